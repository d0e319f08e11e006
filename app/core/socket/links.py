"""One pub/sub connection of the fan-out (`Link`), watched, rebuilt, and tracking what Redis confirmed.

A join is answered only once the Redis that carries its room's channel confirmed the subscription
(see `channels.py`), so a link counts, per channel, the (S)SUBSCRIBE and (S)UNSUBSCRIBE commands
written on its connection whose reply has not been read. Redis answers each channel named in such a
command with one reply, in the order written, so a channel is held once no reply is outstanding and
the last one read was a subscription: a join that arrives while the channel's unsubscription is in
flight waits for the subscription written after it, not for the stale state before.

Each link is watched: when nothing arrives for `PING_AFTER` seconds it sends a PING over the pub/sub
connection, and if still nothing comes within `SILENT_AFTER` the connection is counted lost. A lost
connection (Redis restarted, a network cut, Redis dropping a subscriber whose output buffer grew past
its limit, or a cluster master answering MOVED for a slot it no longer owns) is logged, opened again
and given all its channels back; joins waiting meanwhile complete once the new connection confirms
them. Only when the connection cannot be opened at all is the link unreachable: its waiting joins are
released at once, as the node then works alone (SPEC §9) until Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

PING_AFTER = 5.0
SILENT_AFTER = 15.0
RETRY_MIN = 0.2
RETRY_MAX = 2.0
DATA_MESSAGES = frozenset({"message", "smessage"})
SUBSCRIBED = frozenset({"subscribe", "ssubscribe"})
UNSUBSCRIBED = frozenset({"unsubscribe", "sunsubscribe"})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class OutageLog:
    """One warning when a part of the fan-out fails and one when it works again, not one per try."""

    def __init__(self) -> None:
        self.failing: set[str] = set()

    def failed(self, part: str, exc: BaseException) -> None:
        if part not in self.failing:
            self.failing.add(part)
            logger.warning(
                "Redis fan-out unavailable (%s: %s: %s); local sockets keep working",
                part,
                type(exc).__name__,
                exc,
            )

    def recovered(self, part: str, detail: str) -> None:
        if part in self.failing:
            self.failing.discard(part)
            logger.warning("Redis fan-out resumed (%s): %s", part, detail)

    @property
    def down(self) -> bool:
        return bool(self.failing)


class LinkOwner(Protocol):
    """What a link needs of the channels it serves (`channels.FanOutChannels`)."""

    inbox: asyncio.Queue[bytes]
    outages: OutageLog
    wanted: set[str]

    def batches(self, channels: list[str]) -> Iterable[list[str]]: ...

    def read_slots_again(self) -> None: ...

    def link_holds(self, link: Link, channel: str) -> None: ...

    def link_unreachable(self, link: Link) -> None: ...


class Link:
    """One pub/sub connection (to the Redis, or to one cluster master) and the channels it holds."""

    def __init__(self, name: str, client: Redis, sharded: bool, owner: LinkOwner) -> None:
        self.name = name
        self.client = client
        self.sharded = sharded
        self.owner = owner
        self.held: set[str] = set()
        """The channels this connection should be subscribed to; given back after a reconnect."""
        self.confirmed: set[str] = set()
        """The channels whose last reply read on the open connection was a subscription."""
        self.outstanding: Counter[str] = Counter()
        """Per channel, the (un)subscriptions written on the open connection and not answered yet."""
        self.reachable = True
        """False once opening a connection failed, until one opens."""
        self.pubsub: PubSub | None = None
        self.has_channels = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.rebuilds = 0
        self._writing = asyncio.Lock()

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._read_forever(), name=f"parley-fanout-{self.name}")

    def holds(self, channel: str) -> bool:
        """Whether Redis confirmed this connection's subscription to `channel`, with no change since."""
        return channel in self.confirmed and not self.outstanding[channel]

    async def change(self, added: set[str], removed: set[str]) -> None:
        """Subscribe to `added` and unsubscribe from `removed` on the open connection (if any).

        On the one Redis a channel wanted again while this waited for the lock stays: it was joined
        meanwhile, and that join may already have been answered on the subscription it would end."""
        async with self._writing:
            if not self.sharded:
                removed = removed - self.owner.wanted
            self.held |= added
            self.held -= removed
            if self.held:
                self.has_channels.set()
            pubsub = self.pubsub
            if pubsub is None:
                return  # the reader subscribes to everything held once it (re)connects
            try:
                await self._send(pubsub, added, subscribe=True)
                await self._send(pubsub, removed, subscribe=False)
            except Exception as exc:  # noqa: BLE001 - the reader notices the same fault and rebuilds
                logger.debug("fan-out subscription change on %s failed: %s", self.name, exc)
                await self._drop(pubsub)

    async def _send(self, pubsub: PubSub, channels: Iterable[str], *, subscribe: bool) -> None:
        """(S)SUBSCRIBE or (S)UNSUBSCRIBE in batches; only written, the replies are read by the reader."""
        for batch in self.owner.batches(sorted(channels)):
            self.outstanding.update(batch)
            if self.sharded:
                await (pubsub.ssubscribe(*batch) if subscribe else pubsub.sunsubscribe(*batch))
            else:
                await (pubsub.subscribe(*batch) if subscribe else pubsub.unsubscribe(*batch))

    async def _read_forever(self) -> None:
        retry = RETRY_MIN
        while True:
            await self.has_channels.wait()
            opened = False
            try:
                pubsub = await self._open()
                opened = True
                await self._read_until_lost(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every fault: log once, reconnect, resubscribe
                self.owner.outages.failed(f"subscriptions on {self.name}", exc)
                await self._drop(self.pubsub)
                if not opened:
                    self.reachable = False
                    self.owner.link_unreachable(self)
                self.owner.read_slots_again()
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)
            else:
                retry = RETRY_MIN

    async def _open(self) -> PubSub:
        """A new connection, subscribed to every channel held (written under the lock that orders
        `change`, so nothing asked meanwhile is missed)."""
        pubsub = self.client.pubsub()
        try:
            await pubsub.connect()  # type: ignore[no-untyped-call]  # read and pinged with no channel
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        self.reachable = True
        async with self._writing:
            self.pubsub = pubsub
            self.confirmed.clear()
            self.outstanding.clear()
            await self._send(pubsub, set(self.held), subscribe=True)
        if self.rebuilds:
            detail = f"{len(self.held)} channels subscribed again on {self.name}"
            self.owner.outages.recovered(f"subscriptions on {self.name}", detail)
        self.rebuilds += 1
        return pubsub

    async def _read_until_lost(self, pubsub: PubSub) -> None:
        heard = time.monotonic()
        while self.pubsub is pubsub:
            message = await pubsub.get_message(timeout=PING_AFTER)
            now = time.monotonic()
            if message is None:
                if now - heard > SILENT_AFTER:
                    raise ConnectionError(f"no answer on the pub/sub connection for {SILENT_AFTER:g} s")
                await pubsub.ping()
                continue
            heard = now
            await self._handle(message, current=self.pubsub is pubsub)
        raise ConnectionError("subscription connection closed to be rebuilt")

    async def _handle(self, message: dict[str, Any], *, current: bool) -> None:
        """Hand data on; count a (un)subscription reply only when it came on the current connection
        (a late reply from a dropped one says nothing of the new one)."""
        kind = message["type"]
        if kind in DATA_MESSAGES:
            await self.owner.inbox.put(message["data"])
        elif current and (kind in SUBSCRIBED or kind in UNSUBSCRIBED):
            self._answered(_text(message["channel"]), subscribed=kind in SUBSCRIBED)

    def _answered(self, channel: str, *, subscribed: bool) -> None:
        """A (un)subscription reply. One nobody asked for is a cluster master giving up a channel whose
        slot moved away: the channel is let go here and the next sync finds the slot's new master."""
        if not self.outstanding[channel] and not subscribed:
            self.confirmed.discard(channel)
            self.held.discard(channel)
            self.owner.read_slots_again()
            return
        self.outstanding[channel] -= 1
        if self.outstanding[channel] <= 0:
            del self.outstanding[channel]
        if subscribed:
            self.confirmed.add(channel)
        else:
            self.confirmed.discard(channel)
        if self.holds(channel):
            self.owner.link_holds(self, channel)

    async def _drop(self, pubsub: PubSub | None) -> None:
        if pubsub is not None and self.pubsub is pubsub:
            self.pubsub = None
            self.confirmed.clear()
            self.outstanding.clear()
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self._drop(self.pubsub)
        with contextlib.suppress(Exception):
            await self.client.aclose()


def pubsub_client(**kwargs: Any) -> Redis:
    """A client for one pub/sub connection that never reconnects by itself: a fault reaches `Link`,
    which logs it and gives the new connection its channels."""
    return Redis(socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), **kwargs)
