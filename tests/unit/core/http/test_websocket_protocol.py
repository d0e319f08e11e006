"""Parley's websocket protocol under a real uvicorn server on a loopback port, with a websockets client:
an accepted websocket offers `write_frame`, whose frame reaches the client as is; it refuses (and
`send` serves) when permessage-deflate was negotiated or once the websocket is closing; the
handshake's request and response are let go of (and the request's headers, which websockets' parser
keeps); the lean stand-ins for uvicorn's `asyncio.Queue` and `asyncio.Event` behave as uvicorn uses
them; a coroutine handed to `continue_with` serves the connection once the application has returned;
reading pauses only once `INBOUND_BACKLOG` messages
wait for the application, and resumes once it has read them; a text message in fragments is decoded
as they arrive (invalid UTF-8 fails the connection with 1007 at its first fragment) and a Close
between fragments is answered with a Close; what a tick writes to a connection, on any path, reaches
its transport as one write, in order, with the transport's back-pressure where it was."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
import websockets
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import ClientConnection
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from app.core.http.websocket_protocol import (
    CONTINUE_WITH,
    FRAME_WRITER,
    INBOUND_BACKLOG,
    CoalescingTransport,
    FrameWritingProtocol,
    InboundQueue,
    MidMessageCloseProtocol,
    Writable,
    server_frame,
    tick_flush,
)
from tests.support.server import free_port

OVERRIDES = {
    "handle_connect": "(self, event: 'Request') -> 'None'",
    "send": "(self, message: 'ASGISendEvent') -> 'None'",
    "send_receive_event_to_app": "(self) -> 'None'",
    "handle_text": "(self, event: 'Frame') -> 'None'",
    "handle_cont": "(self, event: 'Frame') -> 'None'",
    "connection_made": "(self, transport: 'BaseTransport') -> 'None'",
    "connection_lost": "(self, exc: 'Exception | None') -> 'None'",
    "pause_writing": "(self) -> 'None'",
    "resume_writing": "(self) -> 'None'",
}
"""uvicorn's methods the protocol overrides, with the signatures they were written against."""


def test_the_overridden_uvicorn_methods_are_still_there_as_they_were() -> None:
    for name, signature in OVERRIDES.items():
        assert name in vars(FrameWritingProtocol)
        upstream = getattr(WebSocketsSansIOProtocol, name, None)
        assert upstream is not None, f"uvicorn's protocol no longer has {name}"
        assert str(inspect.signature(upstream)) == signature, f"uvicorn's {name} changed its signature"
        assert inspect.iscoroutinefunction(upstream) == inspect.iscoroutinefunction(
            vars(FrameWritingProtocol)[name]
        )
    assert str(inspect.signature(ServerProtocol.recv_frame)) == "(self, frame: 'Frame') -> 'None'"
    assert "recv_frame" in vars(MidMessageCloseProtocol)
    # uvicorn marks a sent Close with this attribute, which the protocol watches through a property
    assert "self.close_sent = True" in inspect.getsource(WebSocketsSansIOProtocol)
    assert isinstance(vars(FrameWritingProtocol)["close_sent"], property)


class App:
    """An ASGI app that accepts every websocket and hands the test its `receive` and protocol."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[tuple[Any, FrameWritingProtocol]] = asyncio.Queue()
        self.done = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        writer = scope["extensions"][FRAME_WRITER]
        await self.accepted.put((receive, writer.__self__))
        await self.done.wait()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """`app` under uvicorn with the protocol, on a loopback port: its websocket URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=FrameWritingProtocol, lifespan="off", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def served() -> AsyncIterator[tuple[App, str]]:
    app = App()
    async with serving(app) as url:
        yield app, url
        app.done.set()


def parser_locals(protocol: FrameWritingProtocol) -> list[dict[str, Any]]:
    """The local variables of websockets' parser, a generator delegating to others: outermost first."""
    found = []
    generator: Any = protocol.conn.parser
    while generator is not None and generator.gi_frame is not None:
        found.append(generator.gi_frame.f_locals)
        generator = generator.gi_yieldfrom
    return found


async def test_a_frame_reaches_the_client_as_is_and_the_handshake_is_let_go(served: tuple[App, str]) -> None:
    app, url = served
    async with websockets.connect(url, compression=None) as client:
        _receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)

        assert protocol.write_frame(server_frame("héllo"))
        assert protocol.write_frame(server_frame(b"\x01\x02"))

        assert await asyncio.wait_for(client.recv(), 5) == "héllo"
        assert await asyncio.wait_for(client.recv(), 5) == b"\x01\x02"
        assert not hasattr(protocol, "request")
        assert not hasattr(protocol, "response")
        # websockets' server parser, which holds the request, gave way to its frame parser
        assert all("request" not in names for names in parser_locals(protocol))
        assert protocol.scope["path"] == "/", "the scope is intact"


async def test_a_compressed_or_closing_websocket_refuses_frames(served: tuple[App, str]) -> None:
    app, url = served
    async with websockets.connect(url, compression="deflate") as client:
        _receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)
        assert client.protocol.extensions, "permessage-deflate was negotiated"

        assert not protocol.write_frame(server_frame("x"))
    async with websockets.connect(url, compression=None):
        _receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)
        await protocol.send({"type": "websocket.close", "code": 1000})

        assert not protocol.write_frame(server_frame("x"))


async def test_a_websocket_refuses_frames_once_the_client_closed_it_or_it_is_lost(
    served: tuple[App, str],
) -> None:
    app, url = served
    async with websockets.connect(url, compression=None) as client:
        receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)
        await client.close()
        assert (await asyncio.wait_for(receive(), 5))["type"] == "websocket.disconnect"

        assert not protocol.write_frame(server_frame("x")), "the client's Close was answered"
    async with websockets.connect(url, compression=None) as client:
        receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)
        client.transport.abort()
        assert (await asyncio.wait_for(receive(), 5))["type"] == "websocket.disconnect"

        assert not protocol.write_frame(server_frame("x")), "the connection was lost"
        assert protocol.disconnected


async def eventually_queued(protocol: FrameWritingProtocol, count: int) -> None:
    while protocol.queue.qsize() < count:
        await asyncio.sleep(0.01)


async def test_reading_pauses_only_once_the_inbound_backlog_is_full(served: tuple[App, str]) -> None:
    app, url = served
    async with websockets.connect(url, compression=None) as client:
        receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)

        for index in range(INBOUND_BACKLOG - 1):
            await client.send(f"m{index}")
        await asyncio.wait_for(eventually_queued(protocol, INBOUND_BACKLOG - 1), 5)
        assert not protocol.read_paused, "a short backlog leaves reading on"

        await client.send("the last that fits")
        await asyncio.wait_for(eventually_queued(protocol, INBOUND_BACKLOG), 5)
        assert protocol.read_paused
        received = [await receive() for _ in range(INBOUND_BACKLOG)]
        assert not protocol.read_paused, "reading resumes once the application has read them all"

        await client.send("after")
        assert await asyncio.wait_for(receive(), 5) == {"type": "websocket.receive", "text": "after"}
        assert [message["text"] for message in received[:2]] == ["m0", "m1"]


def write_frames(client: Any, *frames: Frame) -> None:
    """Frames written as they are, past the client's own checks (masked, as a client must)."""
    for frame in frames:
        client.transport.write(frame.serialize(mask=True, extensions=[]))


async def test_a_text_message_in_fragments_is_decoded_across_them(served: tuple[App, str]) -> None:
    app, url = served
    async with websockets.connect(url, compression=None) as client:
        receive, _protocol = await asyncio.wait_for(app.accepted.get(), 5)
        kappa = "κ".encode()  # two bytes, one in each fragment
        write_frames(client, Frame(Opcode.TEXT, kappa[:1], fin=False), Frame(Opcode.CONT, kappa[1:]))

        assert await asyncio.wait_for(receive(), 5) == {"type": "websocket.receive", "text": "κ"}


@pytest.mark.parametrize(
    "frame",
    [
        Frame(Opcode.TEXT, b"ok \xed\xa0\x80", fin=False),  # a UTF-16 surrogate, in a first fragment
        Frame(Opcode.TEXT, b"\xff"),  # a whole message
    ],
    ids=["first-fragment", "whole-message"],
)
async def test_invalid_utf8_fails_the_connection_at_once(served: tuple[App, str], frame: Frame) -> None:
    app, url = served
    async with websockets.connect(url, compression=None) as client:
        receive, _protocol = await asyncio.wait_for(app.accepted.get(), 5)
        write_frames(client, frame)

        assert await asyncio.wait_for(receive(), 5) == {
            "type": "websocket.disconnect",
            "code": 1007,
            "reason": "invalid UTF-8",
        }
        await asyncio.wait_for(client.wait_closed(), 5)
        assert client.close_code == 1007


async def test_a_close_between_fragments_is_answered_with_its_code(served: tuple[App, str]) -> None:
    app, url = served
    async with websockets.connect(url, compression=None) as client:
        receive, _protocol = await asyncio.wait_for(app.accepted.get(), 5)
        write_frames(
            client,
            Frame(Opcode.TEXT, b"fragment1", fin=False),
            Frame(Opcode.CLOSE, Close(1000, "").serialize()),
        )

        assert (await asyncio.wait_for(receive(), 5))["code"] == 1000, "the unfinished message is dropped"
        await asyncio.wait_for(client.wait_closed(), 5)
        assert client.protocol.close_rcvd is not None
        assert client.protocol.close_rcvd.code == 1000


HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
MASK = b"\x01\x02\x03\x04"
MASKED_HI = b"\x81\x82" + MASK + bytes(byte ^ MASK[index % 4] for index, byte in enumerate(b"hi"))
"""A client's text frame `hi`."""


@pytest.mark.parametrize("with_handshake", [0, 2], ids=["nothing", "a frame's first two bytes"])
def test_the_frame_parser_goes_on_alone_only_between_frames(with_handshake: int) -> None:
    conn = ServerProtocol()
    conn.__class__ = MidMessageCloseProtocol
    conn.receive_data(HANDSHAKE + MASKED_HI[:with_handshake])
    [request] = conn.events_received()
    assert isinstance(request, Request)
    conn.send_response(conn.accept(request))
    assert isinstance(conn, MidMessageCloseProtocol)

    conn.parse_frames_only()

    server_parser: Any = conn.parser
    holds_the_request = server_parser.gi_frame is not None and "request" in server_parser.gi_frame.f_locals
    assert holds_the_request == bool(with_handshake), "replaced only while no frame is begun"
    conn.receive_data(MASKED_HI[with_handshake:])
    [frame] = conn.events_received()
    assert isinstance(frame, Frame)
    assert (frame.opcode, frame.data) == (Opcode.TEXT, b"hi")


async def test_a_text_frame_s_payload_is_let_go_of_once_decoded(served: tuple[App, str]) -> None:
    app, url = served
    async with websockets.connect(url, compression=None) as client:
        receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)
        await client.send("x" * 10_000)
        assert await asyncio.wait_for(receive(), 5) == {"type": "websocket.receive", "text": "x" * 10_000}

        # websockets' parser keeps its last frame while it waits for the next one
        last = next(names["frame"] for names in parser_locals(protocol) if "frame" in names)
        assert last.opcode is Opcode.TEXT
        assert last.data == b""


async def test_the_inbound_queue_hands_messages_over_in_order_to_a_waiting_reader() -> None:
    queue = InboundQueue()
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()

    queue.put_nowait("a")
    queue.put_nowait("b")
    assert queue.qsize() == 2

    assert await asyncio.wait_for(reader, 5) == "a"
    assert await queue.get() == "b"
    assert queue.empty()


async def test_writable_holds_a_send_while_cleared_and_forgets_a_cancelled_one() -> None:
    writable = Writable()
    assert writable.is_set()
    assert await writable.wait()

    writable.clear()
    waiting = asyncio.ensure_future(writable.wait())
    cancelled = asyncio.ensure_future(writable.wait())
    await asyncio.sleep(0)
    assert not waiting.done()
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    writable.set()
    assert await asyncio.wait_for(waiting, 5)
    assert writable.is_set()


async def test_a_continuation_serves_the_connection_after_the_application_returned() -> None:
    returned = asyncio.Event()

    async def echo_once(receive: Any, send: Any) -> None:
        assert returned.is_set(), "the application's call has returned first"
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"]})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        scope["extensions"][CONTINUE_WITH](echo_once(receive, send))
        returned.set()

    async with serving(app) as url, websockets.connect(url, compression=None) as client:
        await asyncio.wait_for(returned.wait(), 5)
        await client.send("still served")
        assert await asyncio.wait_for(client.recv(), 5) == "still served"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(client.recv(), 5)  # the continuation ended: the server closes


class RecordingTransport(asyncio.Transport):
    """A transport that records what it is given and keeps it all buffered (its client does not
    read): a buffer of `buffered` bytes to begin with, high-water mark `high`."""

    def __init__(self, buffered: int = 0, high: int = 1 << 16) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.buffered = buffered
        self.high = high
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")
        self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return 0, self.high

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.events.append("close")
        self.closing = True

    def abort(self) -> None:
        self.events.append("abort")
        self.closing = True

    def write_eof(self) -> None:
        self.events.append("write_eof")


def coalescing(transport: RecordingTransport) -> CoalescingTransport:
    return CoalescingTransport(transport, tick_flush(asyncio.get_running_loop()))


async def test_a_tick_s_writes_reach_the_transport_as_one_after_it() -> None:
    recorded = RecordingTransport()
    transport = coalescing(recorded)

    transport.write(b"first")
    assert recorded.writes == [b"first"], "a quiet connection's first write goes out at once"
    transport.write(b"a")
    transport.write(b"")
    transport.writelines([b"b", b"c"])
    assert transport.get_write_buffer_size() == len(b"first") + 3, "buffered bytes count as written"
    await asyncio.sleep(0)
    assert recorded.writes == [b"first", b"abc"]

    transport.write(b"d")
    transport.write(b"e")
    assert recorded.writes == [b"first", b"abc"], "after a busy tick, every write waits for its end"
    await asyncio.sleep(0)
    assert recorded.writes[2:] == [b"de"]

    lone = b"lone"
    transport.write(lone)
    await asyncio.sleep(0)
    assert recorded.writes[3] is lone, "handed on as is, at the end of its tick"
    transport.write(b"quiet again")
    assert recorded.writes[4:] == [b"quiet again"]


async def test_every_connection_written_in_a_tick_is_flushed_by_one_callback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    scheduled: list[Any] = []
    call_soon = loop.call_soon

    def spy(callback: Any, *args: Any, **kwargs: Any) -> Any:
        scheduled.append(callback)
        return call_soon(callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_soon", spy)
    first, second = RecordingTransport(), RecordingTransport()
    transports = coalescing(first), coalescing(second)
    for transport in transports * 3:
        transport.write(b"x")
    monkeypatch.undo()

    assert len(scheduled) == 1
    await asyncio.sleep(0)
    assert first.writes == second.writes == [b"x", b"xx"]


async def test_a_quiet_connection_does_not_overtake_one_that_buffers_in_the_same_tick() -> None:
    busy_recorded, quiet_recorded = RecordingTransport(), RecordingTransport()
    busy, quiet = coalescing(busy_recorded), coalescing(quiet_recorded)
    busy.write(b"1")
    busy.write(b"2")
    await asyncio.sleep(0)
    order: list[bytes] = []
    busy_recorded.write = quiet_recorded.write = order.append  # type: ignore[method-assign,assignment]

    busy.write(b"busy")
    quiet.write(b"quiet")
    assert order == [], "the quiet one waits too: the busy one's message came first"
    await asyncio.sleep(0)

    assert order == [b"busy", b"quiet"]


async def test_closing_aborting_or_ending_the_stream_writes_what_is_buffered_first() -> None:
    for end in ("close", "abort", "write_eof"):
        recorded = RecordingTransport()
        transport = coalescing(recorded)
        transport.write(b"first")
        transport.write(b"last")

        getattr(transport, end)()

        assert recorded.events == ["write", "write", end]
        assert recorded.writes == [b"first", b"last"]
        await asyncio.sleep(0)
        assert recorded.writes == [b"first", b"last"], "nothing is written twice"


async def test_bytes_that_would_pass_the_high_water_mark_are_written_at_once() -> None:
    recorded = RecordingTransport(buffered=3, high=10)
    transport = coalescing(recorded)
    transport.write(b"0")  # the transport holds 4 bytes

    transport.write(b"12345")
    assert recorded.writes == [b"0"], "4 + 5 bytes stay under the mark"
    transport.write(b"67")
    assert recorded.writes == [b"0", b"1234567"], "4 + 7 pass it: the transport gets them now"
    transport.write(b"8")
    assert recorded.writes == [b"0", b"1234567", b"8"], "the transport holds 11: written as they come"


async def test_what_is_buffered_when_the_connection_is_lost_is_dropped() -> None:
    recorded = RecordingTransport()
    transport = coalescing(recorded)
    transport.write(b"sent")
    transport.write(b"unsent")
    recorded.closing = True

    await asyncio.sleep(0)
    transport.close()

    assert recorded.writes == [b"sent"]
    assert transport.get_write_buffer_size() == len(b"sent")


class Recorder:
    """Stands between a coalescing transport and the real one, counting the writes."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def recorded(protocol: FrameWritingProtocol) -> Recorder:
    coalesced = protocol.transport
    assert isinstance(coalesced, CoalescingTransport)
    recorder = Recorder(coalesced.transport)
    coalesced.transport = recorder  # type: ignore[assignment] # what a transport offers, by delegation
    return recorder


@contextlib.asynccontextmanager
async def recorded_connection(
    served: tuple[App, str], compression: str | None
) -> AsyncIterator[tuple[ClientConnection, FrameWritingProtocol, Recorder]]:
    """A client connected to `served`, the server's protocol of it, and what reaches its transport."""
    app, url = served
    async with websockets.connect(url, compression=compression) as client:
        _receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)
        yield client, protocol, recorded(protocol)


async def test_frames_sends_and_the_close_of_a_tick_leave_in_one_write_in_order(
    served: tuple[App, str],
) -> None:
    async with recorded_connection(served, None) as (client, protocol, recorder):
        assert protocol.write_frame(server_frame("framed"))
        await protocol.send({"type": "websocket.send", "text": "sent"})  # uvicorn's own path
        assert protocol.write_frame(server_frame(b"framed again"))
        await protocol.send({"type": "websocket.close", "code": 1000})
        assert not protocol.write_frame(server_frame("too late"))

        assert [await asyncio.wait_for(client.recv(), 5) for _ in range(3)] == [
            "framed",
            "sent",
            b"framed again",
        ]
        await asyncio.wait_for(client.wait_closed(), 5)
        assert client.close_code == 1000
        assert len(recorder.writes) == 2, "the first at once (the connection was quiet), the rest together"


async def test_a_keepalive_ping_follows_the_frames_written_before_it_in_its_tick(
    served: tuple[App, str],
) -> None:
    async with recorded_connection(served, None) as (client, protocol, recorder):
        assert protocol.write_frame(server_frame("at once"))
        assert protocol.write_frame(server_frame("buffered"))
        protocol.send_keepalive_ping()  # uvicorn's control frame, on its own timer
        await asyncio.sleep(0)

        assert recorder.writes[0] == server_frame("at once")
        assert recorder.writes[1].startswith(server_frame("buffered") + bytes((0x89, 4)))
        assert [await asyncio.wait_for(client.recv(), 5) for _ in range(2)] == ["at once", "buffered"]


async def test_compressed_sends_of_a_tick_leave_together_in_order(served: tuple[App, str]) -> None:
    async with recorded_connection(served, "deflate") as (client, protocol, recorder):
        for text in ("one", "two", "one two"):
            await protocol.send({"type": "websocket.send", "text": text})

        assert [await asyncio.wait_for(client.recv(), 5) for _ in range(3)] == ["one", "two", "one two"]
        assert len(recorder.writes) == 2, "the first at once (the connection was quiet), the rest together"


async def test_a_connection_that_stops_being_writable_mid_tick_keeps_every_frame_in_order(
    served: tuple[App, str],
) -> None:
    app, url = served
    async with websockets.connect(url, compression=None, max_queue=None) as client:
        _receive, protocol = await asyncio.wait_for(app.accepted.get(), 5)
        client.transport.pause_reading()  # at once: the client runs on this loop
        padding = "x" * 60_000

        written = 0
        while protocol.write_frame(server_frame(f"{written} {padding}")):
            written += 1
            assert written < 2000, "the transport never paused"
        assert not protocol.writable.is_set(), "the transport paused the protocol, as it would have"
        after = asyncio.ensure_future(protocol.send({"type": "websocket.send", "text": "after"}))
        client.transport.resume_reading()

        for index in range(written):
            assert str(await asyncio.wait_for(client.recv(), 5)).split(" ")[0] == str(index)
        assert await asyncio.wait_for(client.recv(), 5) == "after"
        await asyncio.wait_for(after, 5)
        assert protocol.write_frame(server_frame("drained")), "frames go straight out again once drained"
        assert await asyncio.wait_for(client.recv(), 5) == "drained"
