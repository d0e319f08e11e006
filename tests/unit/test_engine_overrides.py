"""Each override of a private python-socketio or Engine.IO method (listed in `app.core.socket.engine`):
the upstream method is still there with the signature it was written against, and the override does
what it is there for, on the real upstream classes (no server process; Redis where the manager needs it).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import engineio
import pytest
import socketio
from engineio import packet as eio_packet
from redis.asyncio import Redis
from socketio.async_pubsub_manager import AsyncPubSubManager

from app.config.settings import SocketSettings
from app.core.metrics import Metrics
from app.core.socket.engine.managers import ROOM_OP, LocalManager, RedisManager
from app.core.socket.engine.outgoing import BacklogLimit
from app.core.socket.engine.server import ParleyServer
from app.core.socket.engine.transport import ParleyEngine, ParleySocket
from tests.support.backends import REDIS_HOST, REDIS_PORT, require_services
from tests.unit.test_fanout_manager import ROOMY, FakeEioSocket

OVERRIDES: list[tuple[type[Any], type[Any], str, str]] = [
    (ParleyServer, socketio.AsyncServer, "_engineio_server_class", "(self)"),
    (ParleyServer, socketio.AsyncServer, "_handle_eio_connect", "(self, eio_sid, environ)"),
    (ParleyServer, socketio.AsyncServer, "_handle_eio_disconnect", "(self, eio_sid, reason)"),
    (ParleyServer, socketio.AsyncServer, "_handle_connect", "(self, eio_sid, namespace, data)"),
    (ParleyServer, socketio.AsyncServer, "_handle_eio_message", "(self, eio_sid, data)"),
    (ParleyEngine, engineio.AsyncServer, "_handle_connect", "(self, environ, transport, jsonp_index=None)"),
    (RedisManager, AsyncPubSubManager, "_publish", "(self, data)"),
    (RedisManager, AsyncPubSubManager, "_handle_emit", "(self, message)"),
    # python-socketio's own Redis manager: `_thread` iterates `_listen`, an async generator there.
    (RedisManager, socketio.AsyncRedisManager, "_listen", "(self)"),
]
"""(our class, the upstream class, the private method, its upstream signature)."""


def assert_overrides(ours: type[Any], upstream: type[Any], name: str) -> None:
    """Fails once the upstream method is gone or is called differently than when it was overridden."""
    signature = next(entry[3] for entry in OVERRIDES if entry[:3] == (ours, upstream, name))
    assert name in vars(ours), f"{ours.__name__} no longer overrides {name}"
    method = getattr(upstream, name, None)
    assert method is not None, f"{upstream.__module__}.{upstream.__name__}.{name} is gone"
    assert str(inspect.signature(method)) == signature, f"{upstream.__name__}.{name} changed its signature"
    assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(vars(ours)[name])
    assert inspect.isasyncgenfunction(method) == inspect.isasyncgenfunction(vars(ours)[name])


def test_every_override_is_listed_in_the_engine_docstring() -> None:
    from app.core.socket import engine

    assert engine.__doc__ is not None
    for ours, upstream, name, _ in OVERRIDES:
        assert f"`{upstream.__name__}.{name}`" in engine.__doc__, f"{ours.__name__}.{name} is not listed"


class Sink:
    """The socket runtime's side of the server, recording what it is handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.refuse = False

    async def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        self.calls.append(("authenticate", sid))
        if self.refuse:
            raise socketio.exceptions.ConnectionRefusedError("no")

    async def connected(self, sid: str) -> None:
        self.calls.append(("connected", sid))

    async def disconnected(self, sid: str, reason: str) -> None:
        self.calls.append(("disconnected", sid))

    async def event(self, sid: str, eio_sid: str, event: str, args: list[Any], ack_id: int | None) -> None:
        self.calls.append(("event", sid, event, args, ack_id))

    async def oversized(self, sid: str, eio_sid: str, event: str, ack_id: int | None, size: int) -> None:
        self.calls.append(("oversized", sid, event, ack_id))

    async def undecodable(self, sid: str, eio_sid: str, event: str, ack_id: int | None) -> None:
        self.calls.append(("undecodable", sid, event, ack_id))

    def user_of(self, sid: str) -> str | None:
        return None

    def kinds(self) -> list[Any]:
        return [call[0] for call in self.calls]


SETTINGS = SocketSettings(
    default_rooms=(),
    cors_origins=(),
    max_payload_bytes=4096,
    ping_interval=60,
    ping_timeout=20,
    connect_timeout=60,
    max_backlog_bytes=1 << 20,
    max_backlog_packets=100,
    ws_compression=False,
    max_per_user=5,
    max_rooms=10,
    max_concurrent_handlers=4,
    ready_conversations=10,
)


class Harness:
    """A `ParleyServer` with one Engine.IO transport `e1`, handed packets as its transport would."""

    def __init__(self, settings: SocketSettings = SETTINGS) -> None:
        self.server = ParleyServer(settings, LocalManager(), Metrics())
        self.sink = Sink()
        self.server.attach_sink(self.sink)
        self.transport = ParleySocket(self.server.eio, "e1")
        self.server.eio.sockets["e1"] = self.transport

    async def open(self) -> None:
        await self.server._handle_eio_connect("e1", {"wsgi.input": object(), "HTTP_COOKIE": "c=1"})

    async def connect(self) -> str:
        await self.open()
        await self.server._handle_eio_message("e1", "0")
        sid = self.server.manager.sid_from_eio_sid("e1", "/")
        assert sid is not None
        return str(sid)

    def malformed(self) -> int:
        return self.server._malformed.get("e1", 0)


async def test_the_engine_io_server_is_parley_s() -> None:
    assert_overrides(ParleyServer, socketio.AsyncServer, "_engineio_server_class")
    harness = Harness()
    assert type(harness.server.eio) is ParleyEngine
    assert harness.server.eio.backlog_limit == BacklogLimit(
        SETTINGS.max_backlog_bytes, SETTINGS.max_backlog_packets
    )


async def test_an_opened_transport_has_a_join_deadline_and_no_request_body_reader() -> None:
    assert_overrides(ParleyServer, socketio.AsyncServer, "_handle_eio_connect")
    harness = Harness()
    await harness.open()
    assert "e1" in harness.server._join_deadlines
    assert "wsgi.input" not in harness.server.environ["e1"]


async def test_a_transport_that_never_joins_is_closed_at_its_deadline() -> None:
    harness = Harness(SocketSettings(**{**_fields(SETTINGS), "connect_timeout": 0.01}))
    faults: asyncio.Queue[tuple[str | None, str]] = asyncio.Queue()
    harness.server.fault = lambda eio_sid, kind, why: faults.put_nowait((eio_sid, kind))  # type: ignore[method-assign]
    await harness.open()
    assert await asyncio.wait_for(faults.get(), 5) == ("e1", "deadline")
    assert "e1" not in harness.server._join_deadlines


async def test_a_closed_transport_forgets_its_deadline_and_malformed_count_and_disconnects() -> None:
    assert_overrides(ParleyServer, socketio.AsyncServer, "_handle_eio_disconnect")
    harness = Harness()
    sid = await harness.connect()
    await harness.server._handle_eio_message("e1", b"\x00")
    assert harness.malformed() == 1
    await harness.server._handle_eio_disconnect("e1", harness.server.reason.TRANSPORT_CLOSE)
    assert harness.malformed() == 0
    assert "e1" not in harness.server._join_deadlines
    assert ("disconnected", sid) in harness.sink.calls


async def test_a_connect_is_admitted_once_ends_the_deadline_and_drops_the_request_headers() -> None:
    assert_overrides(ParleyServer, socketio.AsyncServer, "_handle_connect")
    harness = Harness()
    sid = await harness.connect()
    assert harness.sink.calls == [("authenticate", sid), ("connected", sid)]
    assert "e1" not in harness.server._join_deadlines
    assert "HTTP_COOKIE" not in harness.server.environ["e1"]

    await harness.server._handle_eio_message("e1", "0")

    assert harness.sink.kinds() == ["authenticate", "connected"], "a second CONNECT is not handled"
    assert harness.malformed() == 1


async def test_a_refused_connect_is_not_connected_and_keeps_the_deadline() -> None:
    harness = Harness()
    harness.sink.refuse = True
    await harness.open()
    await harness.server._handle_eio_message("e1", "0")
    assert harness.sink.kinds() == ["authenticate"]
    assert "e1" in harness.server._join_deadlines


async def test_packets_are_decoded_defensively_and_routed() -> None:
    assert_overrides(ParleyServer, socketio.AsyncServer, "_handle_eio_message")
    harness = Harness()
    await harness.open()
    await harness.server._handle_eio_message("e1", '2["early"]')
    assert harness.malformed() == 1, "an event before the namespace handshake is dropped"
    sid = await harness.connect()

    await harness.server._handle_eio_message("e1", '27["say",{"text":"hi"}]')
    await harness.server._handle_eio_message("e1", '2["big","' + "x" * 9000 + '"]')
    await harness.server._handle_eio_message("e1", '28["deep",' + "[" * 1100 + "]" * 1100 + "]")
    await harness.server._handle_eio_message("e1", "9")

    assert harness.sink.calls[2:] == [
        ("event", sid, "say", [{"text": "hi"}], 7),
        ("oversized", sid, "big", None),
        ("undecodable", sid, "deep", 8),
    ]
    assert harness.malformed() == 3, "the undecodable and the unknown packet type count as malformed"


async def test_the_handshake_creates_parley_s_socket_and_sets_no_cookie() -> None:
    assert_overrides(ParleyEngine, engineio.AsyncServer, "_handle_connect")
    engine = ParleyEngine(async_mode="asgi", ping_interval=60, ping_timeout=20, cookie="io")
    engine.configure(BacklogLimit(max_bytes=1 << 20, max_packets=10), 1.0, Sink())  # type: ignore[arg-type]
    answer = await engine._handle_connect({"REQUEST_METHOD": "GET", "QUERY_STRING": "EIO=4"}, "polling")
    assert answer["status"] == "200 OK"
    assert not [name for name, _ in answer["headers"] if name.lower() == "set-cookie"]
    opened = eio_packet.Packet(encoded_packet=answer["response"].decode())
    assert opened.packet_type == eio_packet.OPEN
    socket = engine.sockets[opened.data["sid"]]
    assert type(socket) is ParleySocket
    assert socket.connected
    await socket.close(wait=False, abort=True)


@pytest.fixture
async def redis_url() -> str:
    require_services()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def manager(redis_url: str) -> AsyncIterator[RedisManager]:
    manager = RedisManager(redis_url, f"parley-test-{uuid.uuid4().hex}", Metrics())
    yield manager
    await manager.close()


async def test_a_publish_answers_its_receivers_and_an_unreachable_redis_is_an_outage_not_an_error(
    manager: RedisManager,
) -> None:
    assert_overrides(RedisManager, AsyncPubSubManager, "_publish")
    assert await manager._publish({"method": "noop"}) == 0, "published (no node listens)"
    assert not manager.channels.outages.down

    gone = RedisManager("redis://127.0.0.1:1/0", "parley-test-gone", Metrics())
    try:
        assert await gone._publish({"method": "noop"}) == 0
        assert gone.channels.outages.down
    finally:
        await gone.close()


async def test_a_second_copy_of_an_emit_to_several_rooms_is_not_delivered_again(
    manager: RedisManager,
) -> None:
    assert_overrides(RedisManager, AsyncPubSubManager, "_handle_emit")
    server = socketio.AsyncServer(client_manager=manager, async_mode="asgi")
    server.eio.sockets["eio-0"] = recipient = FakeEioSocket(ROOMY)
    sid = await manager.connect("eio-0", "/")
    manager.basic_enter_room(sid, "/", "game:a")
    manager.basic_enter_room(sid, "/", "game:b")
    copy = {"method": "emit", "event": "news", "data": ["x"], "namespace": "/", "room": ["game:a", "game:b"]}
    for _ in range(2):
        await manager._handle_emit({**copy, "host_id": "another-node", "copy": 7})
    await manager._handle_emit({**copy, "host_id": "another-node", "copy": 8})
    assert recipient.written() == ['42["news","x"]', '42["news","x"]'], "copy 7 twice, copy 8 once"


async def test_room_operations_of_other_nodes_are_applied_and_not_handed_on(
    manager: RedisManager, redis_url: str
) -> None:
    assert_overrides(RedisManager, socketio.AsyncRedisManager, "_listen")
    applied: list[dict[str, Any]] = []

    async def apply(op: dict[str, Any]) -> None:
        applied.append(op)

    manager._apply_room_op = apply  # type: ignore[method-assign]
    manager.channels.want(manager.channel)
    assert await manager.channels.subscribed([manager.channel], 5)
    listening = manager._listen()
    assert isinstance(listening, AsyncGenerator)  # typed AsyncIterator; closed below
    receiving = asyncio.ensure_future(anext(listening))
    publisher = Redis.from_url(redis_url)
    try:
        other = {"method": ROOM_OP, "host_id": "another-node", "op": "leave", "room": "r:1"}
        own = {"method": ROOM_OP, "host_id": manager.host_id, "op": "leave", "room": "r:2"}
        for message in (other, own, {"method": "emit", "event": "hello"}):
            await publisher.publish(manager.channel, json.dumps(message))
        handed_on = await asyncio.wait_for(receiving, 5)
    finally:
        await publisher.aclose()
        await listening.aclose()
    assert json.loads(handed_on) == {"method": "emit", "event": "hello"}
    assert applied == [other], "its own operations were applied when sent"


def _fields(settings: SocketSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}
