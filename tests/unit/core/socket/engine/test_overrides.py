"""Each override of a private python-socketio or Engine.IO method (listed in `app.core.socket.engine`):
the upstream method is still there with the signature it was written against, and the override does
what it is there for, on the real upstream classes (no server process). The Redis manager's overrides
are tested against Redis in tests/integration/core/socket/engine/test_redis_manager.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import engineio
import pytest
import socketio
from engineio import packet as eio_packet

from app.config.settings import SocketSettings
from app.core.metrics import Metrics
from app.core.socket.engine.managers import LocalManager
from app.core.socket.engine.outgoing import BacklogLimit
from app.core.socket.engine.server import ParleyServer, TransportServer
from app.core.socket.engine.transport import ParleyEngine, ParleySocket
from tests.support.overrides import OVERRIDES, assert_overrides


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
        self.scope: dict[str, Any] = {"type": "websocket", "headers": [(b"cookie", b"c=1")]}
        environ = {"wsgi.input": object(), "HTTP_COOKIE": "c=1", "QUERY_STRING": "EIO=4"}
        environ["asgi.scope"] = self.scope
        await self.server._handle_eio_connect("e1", environ)

    async def connect(self) -> str:
        await self.open()
        await self.server._handle_eio_message("e1", "0")
        sid = self.server.manager.sid_from_eio_sid("e1", "/")
        assert sid is not None
        return str(sid)

    def malformed(self) -> int:
        return self.server._malformed.get("e1", 0)


async def test_the_engine_io_server_is_parley_s() -> None:
    assert_overrides(TransportServer, socketio.AsyncServer, "_engineio_server_class")
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
    environ = harness.server.environ["e1"]
    assert "HTTP_COOKIE" not in environ
    assert environ["QUERY_STRING"] == "EIO=4", "what is not a header stays"
    assert harness.scope["headers"] == [], "nor does the ASGI scope keep them"

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


@pytest.mark.parametrize("query", [b"EIO=4", b"EIO=4&sid=abc", b"EIO=4&transports=polling"])
async def test_a_request_naming_no_transport_is_answered_400(query: bytes) -> None:
    """Engine.IO takes a request without `transport` for long-polling; the protocol requires one."""
    engine = ParleyEngine(async_mode="asgi")
    scope = {"type": "http", "method": "GET", "path": "/socket.io/", "query_string": query, "headers": []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await engine.handle_request(scope, receive, send)

    assert sent[0]["status"] == 400
    assert not engine.sockets


async def test_the_handshake_gives_a_ping_interval_in_milliseconds_not_rounded_to_seconds() -> None:
    """Engine.IO rounds `ping_interval` down to whole seconds first, which announced 300 ms as 0."""
    engine = ParleyEngine(async_mode="asgi", ping_interval=0.3, ping_timeout=0.2)
    engine.configure(BacklogLimit(max_bytes=1 << 20, max_packets=10), 1.0, Sink())  # type: ignore[arg-type]
    answer = await engine._handle_connect({"REQUEST_METHOD": "GET", "QUERY_STRING": "EIO=4"}, "polling")
    opened = eio_packet.Packet(encoded_packet=answer["response"].decode())
    assert (opened.data["pingInterval"], opened.data["pingTimeout"]) == (300, 200)
    await engine.sockets[opened.data["sid"]].close(wait=False, abort=True)


def _fields(settings: SocketSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}
