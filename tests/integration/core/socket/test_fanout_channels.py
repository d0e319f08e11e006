"""Per-room fan-out channels on real Redis servers of the test's own (a lone Redis, whose command
statistics count only these managers' commands, and a three-master Redis Cluster).

Each `Node` is a RedisManager with a python-socketio server in this process, as a Parley process
holds one; its sockets are Engine.IO stand-ins whose outgoing queues record what they are sent.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Protocol

import pytest
import socketio

from app.core.errors import AppError, ErrorCode
from app.core.metrics import Metrics
from app.core.socket.engine.managers import RedisManager
from tests.support.redis_servers import LoneRedis, RedisCluster
from tests.unit.core.socket.engine.test_fanout_manager import ROOMY, FakeEioSocket

pytestmark = pytest.mark.postgres_redis
ROOMS = [f"game:{index}-open" for index in range(500)]
SETTLE_WITHIN = 10.0


class Node:
    def __init__(self, url: str, prefix: str) -> None:
        self.metrics = Metrics()
        self.manager = RedisManager(url, f"{prefix}socketio", self.metrics)
        self.server = socketio.AsyncServer(client_manager=self.manager, async_mode="asgi")
        self.sockets: dict[str, FakeEioSocket] = {}

    async def start(self, *, settled: bool = True) -> Node:
        """Start listening; with `settled`, once Redis confirmed the node's own channels."""
        self.manager.initialize()
        if not settled:
            return self
        home = [self.manager.channel, self.manager.host_channel(self.manager.host_id)]
        assert await self.manager.channels.subscribed(home, SETTLE_WITHIN)
        return self

    async def connect(self) -> str:
        eio_sid = f"eio-{len(self.sockets)}"
        self.sockets[eio_sid] = self.server.eio.sockets[eio_sid] = FakeEioSocket(ROOMY)
        sid: str = await self.manager.connect(eio_sid, "/")
        return sid

    async def hold(self, sid: str, rooms: list[str]) -> None:
        """Enter `rooms` and wait until Redis confirmed their channels."""
        await self.manager.enter_rooms(sid, rooms)
        channels = [self.manager.room_channel(room) for room in rooms]
        assert await self.manager.channels.subscribed(channels, SETTLE_WITHIN)

    def received(self) -> float:
        value = self.metrics.registry.get_sample_value("parley_fanout_messages_received_total")
        return value or 0.0

    def waiting(self, eio_sid: str) -> int:
        """Packets queued for a socket (none is written: the stand-ins have no transport)."""
        return int(self.sockets[eio_sid].queue.qsize())

    def events(self, eio_sid: str) -> list[list[object]]:
        return [json.loads(text[2:]) for text in self.sockets[eio_sid].written()]

    async def close(self) -> None:
        await self.manager.close()


@pytest.fixture(scope="module")
def lone_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoneRedis]:
    redis = LoneRedis(tmp_path_factory.mktemp("lone-redis"))
    try:
        yield redis.start()
    finally:
        redis.stop()


@pytest.fixture(params=["redis", "redis-cluster"])
def servers(request: pytest.FixtureRequest) -> LoneRedis | RedisCluster:
    name = "lone_redis" if request.param == "redis" else "redis_cluster"
    found: LoneRedis | RedisCluster = request.getfixturevalue(name)
    return found


class NodeStarter(Protocol):
    def __call__(self, on: LoneRedis | RedisCluster, *, settled: bool = True) -> Awaitable[Node]: ...


@pytest.fixture
async def nodes() -> AsyncIterator[NodeStarter]:
    """Start nodes on given Redis servers; a prefix of this test's own keeps their channels apart."""
    prefix = f"fanout-{uuid.uuid4().hex[:8]}:"
    started: list[Node] = []

    async def start(on: LoneRedis | RedisCluster, *, settled: bool = True) -> Node:
        node = await Node(on.url, prefix).start(settled=settled)
        started.append(node)
        return node

    yield start
    for node in started:
        await node.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for a state of Redis that no event announces (a channel's last subscriber gone)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_WITHIN
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "Redis never reached the expected state"
        await asyncio.sleep(0.05)


async def test_a_socket_joining_500_rooms_costs_two_subscribe_commands(
    lone_redis: LoneRedis, nodes: NodeStarter
) -> None:
    node = await nodes(lone_redis)
    sid = await node.connect()
    subscribes, unsubscribes = lone_redis.calls("subscribe"), lone_redis.calls("unsubscribe")
    await node.hold(sid, ROOMS)
    assert lone_redis.calls("subscribe") - subscribes <= 2
    assert lone_redis.subscribers(node.manager.room_channel(ROOMS[123])) == 1
    await node.manager.disconnect(sid, "/", ignore_queue=True)
    await until(lambda: lone_redis.subscribers(node.manager.room_channel(ROOMS[-1])) == 0)
    assert lone_redis.calls("unsubscribe") - unsubscribes <= 2
    assert lone_redis.subscribers(node.manager.channel) == 1, "the shared channel stays"


async def test_500_rooms_on_a_cluster_are_sharded_channels_of_every_master(
    redis_cluster: RedisCluster, nodes: NodeStarter
) -> None:
    node = await nodes(redis_cluster)
    sid = await node.connect()
    await node.hold(sid, ROOMS)
    held = redis_cluster.shard_subscriptions()
    assert all(held.get(node.manager.room_channel(room)) == 1 for room in ROOMS)
    masters = [
        port for port in redis_cluster.ports if redis_cluster.cli(port, "pubsub", "shardchannels").strip()
    ]
    assert len(masters) == len(redis_cluster.ports), "500 rooms spread over every master's slots"
    assert len(node.manager.channels.links) == len(redis_cluster.ports), "one connection per master"
    await node.manager.disconnect(sid, "/", ignore_queue=True)
    room_channel = node.manager.room_channel(ROOMS[0])
    await until(lambda: redis_cluster.subscribers(room_channel) == 0)


async def test_only_nodes_with_a_member_receive_a_rooms_messages(
    servers: LoneRedis | RedisCluster, nodes: NodeStarter
) -> None:
    member, bystander, speaker = await nodes(servers), await nodes(servers), await nodes(servers)
    sid = await member.connect()
    await member.hold(sid, ["game:quiet-open"])
    await bystander.hold(await bystander.connect(), ["game:elsewhere-open"])
    before = bystander.received()
    for index in range(20):
        await speaker.manager.emit("game:news", {"n": index}, namespace="/", room="game:quiet-open")
    await until(lambda: member.waiting("eio-0") == 20)
    assert [event[1] for event in member.events("eio-0")] == [{"n": index} for index in range(20)]
    assert member.received() >= 20
    assert bystander.received() == before, "a node without a member decoded the room's messages"
    assert servers.subscribers(member.manager.room_channel("game:quiet-open")) == 1


async def test_an_emit_to_several_rooms_reaches_a_socket_in_two_of_them_once(
    servers: LoneRedis | RedisCluster, nodes: NodeStarter
) -> None:
    """Published once per room; the node handles the first copy to arrive. A closing emit on each
    room's channel comes after that room's copy, so once both are in, every copy has arrived."""
    member, speaker = await nodes(servers), await nodes(servers)
    both, one = await member.connect(), await member.connect()
    await member.hold(both, ["game:left-open", "game:right-open"])
    await member.hold(one, ["game:right-open"])
    rooms = ["game:left-open", "game:right-open"]
    await speaker.manager.emit("game:news", "pair", namespace="/", room=rooms)
    for room in rooms:
        await speaker.manager.emit("game:news", f"end of {room}", namespace="/", room=room)
    await until(lambda: member.waiting("eio-0") == 3 and member.waiting("eio-1") == 2)
    to_both = [str(event[1]) for event in member.events("eio-0")]
    assert to_both[0] == "pair"
    assert sorted(to_both[1:]) == ["end of game:left-open", "end of game:right-open"]
    assert member.events("eio-1") == [["game:news", "pair"], ["game:news", "end of game:right-open"]]


ROUNDS = 50


async def test_an_emit_right_after_a_join_on_another_node_always_arrives(
    servers: LoneRedis | RedisCluster, nodes: NodeStarter
) -> None:
    """A join returns once Redis (the master owning the channel's slot, on a cluster) confirmed the
    room's subscription, so the speaker's emit right after it reaches the member every round. Each
    round's member is a node just started (its connections still opening) whose two sockets join a
    fresh room at once, the second while the first's subscription is in flight; a steady node's
    socket leaves a room it alone holds and joins it again at once (unsubscription in flight)."""
    speaker, steady = await nodes(servers), await nodes(servers)
    again = "game:again-open"
    lone = await steady.connect()
    await steady.hold(lone, [again])
    members: list[Node] = []
    for index in range(ROUNDS):
        member = await nodes(servers, settled=False)
        members.append(member)
        room = f"game:race-{index}-open"
        first, second = await member.connect(), await member.connect()
        await asyncio.gather(
            member.manager.enter_room(first, "/", room), member.manager.enter_room(second, "/", room)
        )
        await speaker.manager.emit("game:news", f"joined {index}", namespace="/", room=room)
        await steady.manager.leave_room(lone, "/", again)
        await steady.manager.enter_room(lone, "/", again)
        await speaker.manager.emit("game:news", f"again {index}", namespace="/", room=again)
    for index in range(ROUNDS):
        await speaker.manager.emit("game:news", "end", namespace="/", room=f"game:race-{index}-open")
    await speaker.manager.emit("game:news", "end", namespace="/", room=again)
    # Each room's messages arrive in the order published: once every room's last one is in, every
    # emit of the rounds that was delivered at all is in too.
    heard: dict[tuple[Node, str], list[object]] = {
        (node, eio_sid): [] for node in [*members, steady] for eio_sid in node.sockets
    }

    def every_end_heard() -> bool:
        for (node, eio_sid), events in heard.items():
            events += [event[1] for event in node.events(eio_sid)]
        return all(events[-1:] == ["end"] for events in heard.values())

    await until(every_end_heard)
    for index, member in enumerate(members):
        assert heard[member, "eio-0"] == heard[member, "eio-1"] == [f"joined {index}", "end"]
    assert heard[steady, "eio-0"] == [f"again {index}" for index in range(ROUNDS)] + ["end"]


async def heard_after_emits(speaker: Node, member: Node, eio_sid: str, room: str) -> None:
    """Emit to `room` until the member's socket receives one (its node may still be resubscribing)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_WITHIN
    while not member.waiting(eio_sid):
        assert asyncio.get_running_loop().time() < deadline, "no emit to the room arrived"
        await speaker.manager.emit("game:news", "anyone?", namespace="/", room=room)
        await asyncio.sleep(0.05)


async def test_a_join_while_the_connection_is_rebuilt_completes_on_the_new_one(
    servers: LoneRedis | RedisCluster, nodes: NodeStarter
) -> None:
    """Redis drops the node's subscription connections as the join is written: the join is answered
    once the rebuilt connections confirmed the room's channel, and an emit right after arrives."""
    member, speaker = await nodes(servers), await nodes(servers)
    sid = await member.connect()
    rebuilds = sum(link.rebuilds for link in member.manager.channels.links.values())
    servers.kill_subscribers()
    await member.manager.enter_room(sid, "/", "game:rebuilt-open")
    await speaker.manager.emit("game:news", "after", namespace="/", room="game:rebuilt-open")
    await until(lambda: member.waiting("eio-0") == 1)
    assert member.events("eio-0") == [["game:news", "after"]]
    assert sum(link.rebuilds for link in member.manager.channels.links.values()) > rebuilds


async def test_a_channel_whose_slot_moves_follows_it_to_the_new_master(
    redis_cluster: RedisCluster, nodes: NodeStarter
) -> None:
    """The master giving a slot up tells its subscribers (SUNSUBSCRIBE); the node reads the slots
    again and subscribes the channel on the slot's new master, and a join to a room of that slot
    right after is confirmed there."""
    member, speaker = await nodes(redis_cluster), await nodes(redis_cluster)
    sid, late = await member.connect(), await member.connect()
    room = "game:moving-open"
    channel = member.manager.room_channel(room)
    await member.hold(sid, [room])
    before = member.manager.channels.routes[channel]
    redis_cluster.move_slot(channel)
    await until(lambda: member.manager.channels.routes.get(channel, before) != before)
    await member.hold(sid, [room])
    assert redis_cluster.subscribers(channel) == 1
    await heard_after_emits(speaker, member, "eio-0", room)
    await member.manager.enter_room(late, "/", room)
    await speaker.manager.emit("game:news", "to both", namespace="/", room=room)
    await until(lambda: member.waiting("eio-1") == 1)
    assert member.events("eio-1") == [["game:news", "to both"]]


async def test_a_connection_to_a_master_left_with_no_channel_is_closed(
    redis_cluster: RedisCluster, nodes: NodeStarter
) -> None:
    """Once every channel of a master has moved away (a resharding, a failover), the node's
    connection to it is closed rather than kept reconnecting, and the channels work on their new
    masters."""
    member, speaker = await nodes(redis_cluster), await nodes(redis_cluster)
    sid = await member.connect()
    room = "game:emptied-open"
    channels = member.manager.channels
    await member.hold(sid, [room])
    emptied = channels.routes[member.manager.room_channel(room)]
    for channel in [channel for channel, name in channels.routes.items() if name == emptied]:
        redis_cluster.move_slot(channel)
    await until(lambda: emptied not in channels.routes.values())
    await until(lambda: emptied not in channels.links)
    # several slots moved at once: the new masters may take more than one round to confirm
    await until(lambda: channels.holds(member.manager.room_channel(room)))
    await heard_after_emits(speaker, member, "eio-0", room)


class SilentRedis:
    """A TCP server that accepts connections and never answers: Redis reachable but mute."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.held: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.held.append(writer)

        self.server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    def close(self) -> None:
        for writer in self.held:
            writer.close()
        if self.server is not None:
            self.server.close()


async def test_a_join_redis_never_confirms_fails_with_unavailable_and_leaves_the_room() -> None:
    silent = SilentRedis()
    node = Node(await silent.start(), "mute:")
    try:
        await node.start(settled=False)
        sid = await node.connect()
        with pytest.raises(AppError) as refused:
            await node.manager.enter_room(sid, "/", "game:mute-open")
        assert refused.value.code is ErrorCode.UNAVAILABLE
        assert "game:mute-open" not in node.manager.get_rooms(sid, "/")
    finally:
        await node.close()
        silent.close()


async def test_a_join_while_redis_is_unreachable_is_answered_at_once_for_this_node_alone() -> None:
    """Nothing listens where Redis should be: the join is answered (SPEC §9: the node works alone)
    without the confirmation, and the channel stays wanted for when Redis is back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = Node(f"redis://127.0.0.1:{port}/0", "gone:")
    try:
        await node.start(settled=False)
        sid = await node.connect()
        await node.manager.enter_room(sid, "/", "game:alone-open")
        channel = node.manager.room_channel("game:alone-open")
        assert not await node.manager.channels.subscribed([channel])
        assert channel in node.manager.channels.wanted
    finally:
        await node.close()


async def test_enter_room_for_a_socket_of_another_node_returns_once_that_node_holds_the_room(
    servers: LoneRedis | RedisCluster, nodes: NodeStarter
) -> None:
    """python-socketio publishes a join of another node's sid and returns; here it is a join by the
    sid's room, answered once the node holding the sid confirmed the room's channel."""
    member, speaker = await nodes(servers), await nodes(servers)
    sid = await member.connect()
    for index in range(10):
        room = f"game:moved-{index}-open"
        await speaker.manager.enter_room(sid, "/", room)
        assert room in member.manager.get_rooms(sid, "/")
        await speaker.manager.emit("game:news", index, namespace="/", room=room)
    await until(lambda: member.waiting("eio-0") == 10)
    assert [event[1] for event in member.events("eio-0")] == list(range(10))
