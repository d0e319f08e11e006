"""Fan-out channels on Redis: one per room, held by a node only while it has a member in the room.

python-socketio's Redis manager publishes every emit on one channel that every node reads and
decodes, so each message costs as many decodes as there are nodes. Here an emit to a room is
published on that room's channel, and a node subscribes to it while at least one of its sockets is
in the room: a node without a member of the room never receives its messages.

A node holds a set of wanted channels; joins and leaves change the set and a sync task brings the
subscriptions in line with it, many channels per command, so a socket that joins 500 rooms costs a
few round trips. On a single Redis every channel lives on one connection (SUBSCRIBE/PUBLISH). On a
Redis Cluster channels are sharded (SSUBSCRIBE/SPUBLISH): each master holds the channels of its
slots and the node keeps one connection (`links.Link`) per master it needs.

A join waits (`subscribed`) until the Redis that carries its room's channel (on a cluster, the master
owning the channel's slot) confirmed the subscription: an emit published by another node once the
join is answered reaches this node. Joins asking for channels of one batch wait on the same
confirmations. Messages wait in a bounded inbox for the manager: a node that cannot keep up stops
reading, so Redis, not this process, holds the surplus, up to its `client-output-buffer-limit`, past
which it drops the connection and it is rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.core.socket.links import RETRY_MAX, Link, OutageLog, pubsub_client
from app.core.state.redis import connect, is_cluster_url

SUBSCRIBE_BATCH = 500
"""Channels named in one SUBSCRIBE (a single Redis; a cluster groups them by slot instead)."""
INBOX_SIZE = 10_000
"""Messages read from Redis and not yet handled; past it this node stops reading."""
CONFIRM_WITHIN = 5.0
"""How long a join waits for Redis to confirm its subscriptions while Redis is reachable."""
SLOTS = "cluster slots"
SINGLE = "redis"
"""The one connection's name on a single Redis."""


class SubscriptionError(Exception):
    """Redis is reachable but did not confirm a subscription within `CONFIRM_WITHIN` seconds."""


class Waiter:
    """One caller of `subscribed`: the channels it still waits for."""

    def __init__(self, channels: set[str]) -> None:
        self.missing = channels
        self.done = asyncio.Event()
        self.alone = False
        """Released unconfirmed: Redis is unreachable and the node works alone until it is back."""

    def settle(self, channel: str) -> None:
        self.missing.discard(channel)
        if not self.missing:
            self.done.set()


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
        self.routes: dict[str, str] = {}
        """The connection each wanted channel belongs on, as of the last sync."""
        self._waiters: defaultdict[str, set[Waiter]] = defaultdict(set)
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
        """No longer wanted: whoever waits for it has left the room, so they stop waiting for it."""
        self.wanted.discard(channel)
        self._release(channel)
        self._schedule_sync()

    def _schedule_sync(self) -> None:
        if self._sync_task is None or self._sync_task.done():
            self._sync_task = asyncio.create_task(self._sync(), name="parley-fanout-sync")

    def read_slots_again(self) -> None:
        """A connection was lost or gave a channel up: on a cluster, slots may have moved (resharding,
        failover), so the next sync reads them again and moves each channel to the master owning it."""
        if self.sharded:
            self._slots_stale = True
        self._schedule_sync()

    def _link_of(self, channel: str) -> Link | None:
        """The connection `channel` belongs on (on a cluster, none until a sync routed it)."""
        return self.links.get(self.routes.get(channel, "" if self.sharded else SINGLE))

    def holds(self, channel: str) -> bool:
        """Whether the connection `channel` belongs on has Redis's confirmation of its subscription."""
        link = self._link_of(channel)
        return link is not None and link.holds(channel)

    def _unreachable(self, channel: str) -> bool:
        link = self._link_of(channel)
        return SLOTS in self.outages.failing or (link is not None and not link.reachable)

    async def subscribed(self, channels: Iterable[str], within: float = CONFIRM_WITHIN) -> bool:
        """Wait until Redis confirmed this node's subscription to each wanted channel of `channels`.

        True once all are confirmed; False at once if Redis cannot be reached (the node works alone
        until it is back, when the channels are subscribed with the rest); `SubscriptionError` if Redis is
        reachable and did not confirm them within `within` seconds. A connection lost and opened
        again meanwhile is waited for: the new one confirms the channels.
        """
        missing = {channel for channel in channels if channel in self.wanted and not self.holds(channel)}
        if not missing:
            return True
        if any(map(self._unreachable, missing)):
            return False
        waiter = Waiter(missing)
        for channel in missing:
            self._waiters[channel].add(waiter)
        try:
            async with asyncio.timeout(within):
                await waiter.done.wait()
        except TimeoutError:
            raise SubscriptionError(f"Redis did not confirm {len(waiter.missing)} subscriptions") from None
        finally:
            for channel in waiter.missing:
                self._waiters[channel].discard(waiter)
                if not self._waiters[channel]:
                    del self._waiters[channel]
        return not waiter.alone

    def _release(self, channel: str, *, alone: bool = False) -> None:
        for waiter in self._waiters.pop(channel, ()):
            waiter.alone = waiter.alone or alone
            waiter.settle(channel)

    def link_holds(self, link: Link, channel: str) -> None:
        if self.routes.get(channel) == link.name:
            self._release(channel)

    def link_unreachable(self, link: Link) -> None:
        for channel in [channel for channel in self._waiters if self._link_of(channel) is link]:
            self._release(channel, alone=True)

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
                self.outages.failed(SLOTS, exc)
                for channel in list(self._waiters):
                    self._release(channel, alone=True)
                await asyncio.sleep(RETRY_MAX)
                continue
            self.outages.recovered(SLOTS, "slots read")
            self.routes = {channel: name for name, channels in by_link.items() for channel in channels}
            for name in self.links.keys() - by_link.keys():
                by_link[name] = set()
            changed = False
            for name, channels in by_link.items():
                link = self._link(name)
                added, removed = channels - link.held, link.held - channels
                if added or removed:
                    changed = True
                    await link.change(added, removed)
            await self._close_idle_links()
            if not changed:
                return

    async def _close_idle_links(self) -> None:
        """On a cluster, close the connections to masters that no longer own a wanted channel: after a
        failover or a resharding, the one to a master that is gone would otherwise keep reconnecting."""
        if not self.sharded:
            return
        for name in [name for name, link in self.links.items() if not link.held]:
            await self.links.pop(name).close()

    async def _route(self, channels: set[str]) -> dict[str, set[str]]:
        """The connection each channel belongs on: the one Redis, or the master owning its slot."""
        if not self.sharded:
            return {SINGLE: set(channels)}
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
