"""Fan-out channels on Redis: one per room, held by a node only while it has a member in the room.

python-socketio's Redis manager publishes every emit on one channel that every node reads and
decodes, so each message costs as many decodes as there are nodes. Here an emit to a room is
published on that room's channel, and a node subscribes to it while at least one of its sockets is
in the room: a node without a member of the room never receives its messages.

A node holds a set of wanted channels; joins and leaves change the set and a sync task brings the
subscriptions in line with it, many channels per command, so a socket that joins 500 rooms costs a
few writes and no waiting for answers. On a single Redis every channel lives on one connection
(SUBSCRIBE/PUBLISH). On a Redis Cluster channels are sharded (SSUBSCRIBE/SPUBLISH): each master
holds the channels of its slots and the node keeps one connection per master it needs.

Each connection (`Link`) is watched: when nothing arrives for `PING_AFTER` seconds it sends a PING
over the pub/sub connection, and if still nothing comes within `SILENT_AFTER` the connection is
counted lost. A lost connection (Redis restarted, a network cut, or Redis dropping a subscriber
whose output buffer grew past its limit) is logged, opened again and given all its channels back;
what was published meanwhile is what `chat:sync` recovers. Messages wait in a bounded inbox for the
manager: a node that cannot keep up stops reading, so Redis, not this process, holds the surplus,
up to its `client-output-buffer-limit`, past which it drops the connection and it is rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.core.state.redis import connect, is_cluster_url

logger = logging.getLogger(__name__)

SUBSCRIBE_BATCH = 500
"""Channels named in one SUBSCRIBE (a single Redis; a cluster groups them by slot instead)."""
INBOX_SIZE = 10_000
"""Messages read from Redis and not yet handled; past it this node stops reading."""
PING_AFTER = 5.0
SILENT_AFTER = 15.0
SETTLE_WITHIN = 2.0
"""How long a join waits for its subscription to be written before answering anyway."""
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


class Link:
    """One pub/sub connection (to the Redis, or to one cluster master) and the channels it holds."""

    def __init__(self, name: str, client: Redis, sharded: bool, channels: FanOutChannels) -> None:
        self.name = name
        self.client = client
        self.sharded = sharded
        self.owner = channels
        self.held: set[str] = set()
        """The channels this connection should be subscribed to; given back after a reconnect."""
        self.confirmed: set[str] = set()
        """The channels Redis confirmed on the open connection."""
        self.pubsub: PubSub | None = None
        self.has_channels = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.rebuilds = 0

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._read_forever(), name=f"parley-fanout-{self.name}")

    async def change(self, added: set[str], removed: set[str]) -> None:
        """Subscribe to `added` and unsubscribe from `removed` on the open connection (if any)."""
        self.held |= added
        self.held -= removed
        if self.held:
            self.has_channels.set()
        pubsub = self.pubsub
        if pubsub is None:
            return  # the reader subscribes to everything held when it (re)connects
        try:
            await self._send(pubsub, added, subscribe=True)
            await self._send(pubsub, removed, subscribe=False)
        except Exception as exc:  # noqa: BLE001 - the reader notices the same fault and rebuilds
            logger.debug("fan-out subscription change on %s failed: %s", self.name, exc)
            await self._drop(pubsub)

    async def _send(self, pubsub: PubSub, channels: Iterable[str], *, subscribe: bool) -> None:
        """(S)SUBSCRIBE or (S)UNSUBSCRIBE in batches; only written, the confirmations are read later."""
        for batch in self.owner.batches(sorted(channels)):
            if self.sharded:
                await (pubsub.ssubscribe(*batch) if subscribe else pubsub.sunsubscribe(*batch))
            else:
                await (pubsub.subscribe(*batch) if subscribe else pubsub.unsubscribe(*batch))

    async def _read_forever(self) -> None:
        retry = RETRY_MIN
        while True:
            await self.has_channels.wait()
            try:
                await self._read_until_lost()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every fault: log once, reconnect, resubscribe
                self.owner.outages.failed(f"subscriptions on {self.name}", exc)
                await self._drop(self.pubsub)
                self.owner.read_slots_again()
                await asyncio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX)
            else:
                retry = RETRY_MIN

    async def _read_until_lost(self) -> None:
        pubsub = self.client.pubsub()
        self.pubsub = pubsub
        await pubsub.connect()  # type: ignore[no-untyped-call]  # to be read and pinged with no channel
        await self._send(pubsub, set(self.held), subscribe=True)
        if self.rebuilds:
            detail = f"{len(self.held)} channels subscribed again on {self.name}"
            self.owner.outages.recovered(f"subscriptions on {self.name}", detail)
        self.rebuilds += 1
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
            kind = message["type"]
            if kind in DATA_MESSAGES:
                await self.owner.inbox.put(message["data"])
            elif kind in SUBSCRIBED:
                self.confirmed.add(_text(message["channel"]))
                await self.owner.notify_confirmed()
            elif kind in UNSUBSCRIBED:
                self.confirmed.discard(_text(message["channel"]))
        raise ConnectionError("subscription connection closed to be rebuilt")

    async def _drop(self, pubsub: PubSub | None) -> None:
        if pubsub is not None and self.pubsub is pubsub:
            self.pubsub = None
            self.confirmed.clear()
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


class FanOutChannels:
    """The channels this node holds, kept in line with its rooms, and publishing to them."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sharded = is_cluster_url(url)
        self.publisher: Redis | RedisCluster = connect(url)
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue(INBOX_SIZE)
        self.outages = OutageLog()
        self.links: dict[str, Link] = {}
        self.wanted: set[str] = set()
        self._sync_task: asyncio.Task[None] | None = None
        self._confirmations = asyncio.Condition()
        self._slots_stale = False

    def batches(self, channels: list[str]) -> Iterable[list[str]]:
        """Channels that one command may name: a cluster's must share a slot."""
        if not self.sharded:
            for start in range(0, len(channels), SUBSCRIBE_BATCH):
                yield channels[start : start + SUBSCRIBE_BATCH]
            return
        assert isinstance(self.publisher, RedisCluster)
        by_slot: defaultdict[int, list[str]] = defaultdict(list)
        for channel in channels:
            by_slot[self.publisher.keyslot(channel)].append(channel)
        yield from by_slot.values()

    def want(self, channel: str) -> None:
        self.wanted.add(channel)
        self._schedule_sync()

    def drop(self, channel: str) -> None:
        self.wanted.discard(channel)
        self._schedule_sync()

    def _schedule_sync(self) -> None:
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.create_task(self._sync(), name="parley-fanout-sync")

    def read_slots_again(self) -> None:
        """A connection was lost: on a cluster, slots may have moved (resharding, failover), so the
        next sync reads them again and moves each channel to the master that owns it now."""
        if self.sharded:
            self._slots_stale = True
            self._schedule_sync()

    async def settled(self) -> None:
        """Wait until the subscriptions asked for so far are written (not confirmed) to Redis, or
        `SETTLE_WITHIN` seconds while Redis is away (the reader subscribes them once it is back)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_WITHIN):
                while self._sync_task is not None and not self._sync_task.done():
                    await asyncio.shield(self._sync_task)

    def holds(self, channel: str) -> bool:
        """Whether Redis confirmed this node's subscription to `channel`."""
        return any(channel in link.confirmed for link in self.links.values())

    async def notify_confirmed(self) -> None:
        async with self._confirmations:
            self._confirmations.notify_all()

    async def confirmed(self, channels: list[str], timeout: float) -> bool:
        """Wait until Redis confirmed this node's subscription to each of `channels`; False if it did
        not within `timeout` seconds (Redis is away, or a channel is no longer wanted)."""
        await self.settled()
        async with self._confirmations:
            try:
                await asyncio.wait_for(
                    self._confirmations.wait_for(lambda: all(map(self.holds, channels))), timeout
                )
            except TimeoutError:
                return False
        return True

    async def _sync(self) -> None:
        """Bring each connection's channels in line with `wanted`; changes made meanwhile are picked
        up by the next round."""
        await asyncio.sleep(0)  # the rest of this burst of joins and leaves goes into the same round
        while True:
            try:
                by_link = await self._route(self.wanted)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a cluster whose slots cannot be read yet
                self.outages.failed("cluster slots", exc)
                await asyncio.sleep(RETRY_MAX)
                continue
            for name in self.links.keys() - by_link.keys():
                by_link[name] = set()
            changed = False
            for name, channels in by_link.items():
                link = self._link(name)
                added, removed = channels - link.held, link.held - channels
                if added or removed:
                    changed = True
                    await link.change(added, removed)
            if not changed:
                return

    async def _route(self, channels: set[str]) -> dict[str, set[str]]:
        """The connection each channel belongs on: the one Redis, or the master owning its slot."""
        if not self.sharded:
            return {"redis": set(channels)}
        cluster = self.publisher
        assert isinstance(cluster, RedisCluster)
        await cluster.initialize()
        if self._slots_stale:
            await cluster.nodes_manager.initialize()
            self._slots_stale = False
        by_node: defaultdict[str, set[str]] = defaultdict(set)
        for channel in channels:
            node = cluster.get_node_from_key(channel)
            if node is None:
                raise ConnectionError(f"no cluster node holds the slot of {channel}")
            by_node[node.name].add(channel)
        return by_node

    def _link(self, name: str) -> Link:
        link = self.links.get(name)
        if link is None:
            if self.sharded:
                host, _, port = name.rpartition(":")
                client = pubsub_client(host=host, port=int(port))
            else:
                client = Redis.from_url(self.url, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))
            link = self.links[name] = Link(name, client, self.sharded, self)
            link.start()
        return link

    async def publish(self, channel: str, data: str | bytes) -> int:
        """Publish on one channel; the number of subscribers that received it (on a cluster, of the
        shard holding it)."""
        if isinstance(self.publisher, RedisCluster):
            received = await self.publisher.spublish(channel, data)
        else:
            received = await self.publisher.publish(channel, data)
        self.outages.recovered("publish", "publishing again")
        return int(received)

    async def close(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sync_task
        for link in list(self.links.values()):
            await link.close()
        with contextlib.suppress(Exception):
            await self.publisher.aclose()
