"""uvicorn's websocket protocol with a way to write a frame framed once for many connections.

A frame from a server is never masked (RFC 6455 §5.1), so a broadcast's frame is the same bytes for
every recipient. Through ASGI, each `websocket.send` frames its text again for its connection
(websockets' `Protocol.send_text`, then `Frame.serialize`). Served with
`--ws app.core.http.websocket_protocol:FrameWritingProtocol` (as `parley serve` does), an accepted
websocket's ASGI scope carries, under the extension `FRAME_WRITER`, a callable that writes an
already framed message straight to the connection's transport: the Engine.IO transport frames each
packet once (`server_frame`) and hands the same bytes to every recipient.

The callable refuses (returns False) whenever a frame cannot go out as is, and the caller then uses
the ASGI `send`, which does what uvicorn always does: when permessage-deflate was negotiated (each
connection compresses with its own state), while the transport's buffer is over its high-water
mark (`send` waits for it to drain, and so keeps the order and the back-pressure), and once the
websocket is closing or closed. Parsing what the client sends, the handshake, control frames and
the closing handshake stay uvicorn's and the websockets library's.

An application may also hand the rest of an accepted websocket to one coroutine and return: the
scope's extension `CONTINUE_WITH` takes that coroutine, which the server then awaits in the
application's place. An idle connection otherwise holds every call that led to its reader, each a
suspended coroutine with its frame (Engine.IO's request handling, its handshake and upgrade, the
ASGI routing: ten of them, about 3 KiB).

More changes keep a connection lean and its messages cheap: the opening handshake's request and
response are let go of once the websocket is accepted (nothing reads them again, and they would stay
as long as the connection; the websockets library's parser, which keeps the request too, gives way
to its frame parser, and a text frame's payload is emptied once decoded), the messages waiting for the
application and the transport's writability are kept in `InboundQueue` and `Writable` instead of an
`asyncio.Queue` and an `asyncio.Event` (which hold five deques, over 3 KiB, from the start of every
connection to its end), the protocol's attributes are copied into a dict sized for them, and
reading pauses only once `INBOUND_BACKLOG` messages wait for the application, instead of after every
message (uvicorn pauses and resumes the transport's reading for each one, two system calls per
message on uvloop).

Two more make the connection keep RFC 6455 where uvicorn and websockets do not (both found by
Autobahn|Testsuite, `tests/e2e/conformance/websocket/`): a text message in fragments is decoded as they
arrive, so invalid UTF-8 fails the connection (1007) at the first fragment that holds it, not once
the message is whole, and without uvicorn's traceback for it; a Close between a message's fragments
is answered like any other (`MidMessageCloseProtocol`).

Every byte the connection writes (frames from `write_frame`, what uvicorn writes for the ASGI
`send`, control frames, the handshakes) goes through its `CoalescingTransport`: what one event loop
tick writes to a connection leaves in one `transport.write`, at the end of the tick (one callback,
`TickFlush`, for every connection written to), or at once when the connection closes or when the
tick's bytes would take its transport past the high-water mark; the first write to a connection
that was written to once in its last tick goes out at once, so a lone answer waits for nothing. A
fan-out of several messages in a tick costs each recipient one send system call instead of one per
message, and as every path goes through the same buffer, a connection's bytes keep their order.
"""

from __future__ import annotations

import asyncio
import codecs
import struct
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

FRAME_WRITER = "parley.websocket.write_frame"
"""The ASGI scope extension holding an accepted websocket's `FrameWriter`."""

FrameWriter = Callable[[bytes], bool]
CONTINUE_WITH = "parley.websocket.continue_with"
"""The ASGI scope extension holding an accepted websocket's `Continuation`: the coroutine it is given
serves the connection once the application has returned (the connection closes when it ends)."""
Continuation = Callable[[Coroutine[Any, Any, Any]], None]
INBOUND_BACKLOG = 8
"""Messages that may wait for the application before the connection's reading pauses. Each is at
most the websocket's `ws_max_size`; a client that sends faster than they are handled waits."""

_FIN_TEXT = 0x81
_FIN_BINARY = 0x82
_SHORT_LENGTH = 126
_MEDIUM_LENGTH = 1 << 16


def server_frame(payload: str | bytes) -> bytes:
    """One final, unmasked frame around a whole message: text for `str` (UTF-8), binary for `bytes`."""
    if isinstance(payload, str):
        opcode, data = _FIN_TEXT, payload.encode()
    else:
        opcode, data = _FIN_BINARY, payload
    size = len(data)
    if size < _SHORT_LENGTH:
        return bytes((opcode, size)) + data
    if size < _MEDIUM_LENGTH:
        return struct.pack("!BBH", opcode, 126, size) + data
    return struct.pack("!BBQ", opcode, 127, size) + data


class MidMessageCloseProtocol(ServerProtocol):
    """websockets' server side, answering a Close that comes between the fragments of a message.

    RFC 6455 §5.4 lets control frames, Close among them, come between a message's fragments, and
    §5.5.1 asks for a Close in answer; websockets fails the connection with 1002 ("incomplete
    fragmented message") instead. Here the unfinished message is dropped and the Close answered.
    """

    def recv_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CLOSE:
            self.current_size = None  # the unfinished message ends here, unread
        super().recv_frame(frame)

    def parse_frames_only(self) -> None:
        """Go on with the frame parser alone once the handshake's request is parsed.

        websockets' server parser is a generator that parses the request, then delegates to the frame
        parser for the rest of the connection, holding the request all along. When the frame parser
        waits for a frame's first byte (none of it read yet), it takes the place of the two.
        """
        parser: Any = self.parser
        frames = parser.gi_yieldfrom
        waiting = frames.gi_yieldfrom if frames is not None else None
        if waiting is None or waiting.gi_code is not _AT_EOF:
            return
        parser.close()
        self.parser = Protocol.parse(self)
        next(self.parser)  # to its wait for the first byte, as the one it replaces


_AT_EOF = StreamReader.at_eof.__code__


_UTF8Decoder = codecs.getincrementaldecoder("utf-8")


class InboundQueue:
    """What uvicorn's protocol uses of an `asyncio.Queue` for the messages waiting for the application,
    for its one reader (the ASGI `receive`). Idle, it holds an empty list and no waiter's future."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                self._waiter = None
        return self._items.pop(0)  # at most INBOUND_BACKLOG and a disconnect wait

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items


class Writable:
    """What uvicorn's protocol uses of an `asyncio.Event` for its transport's writability: set, except
    while the transport's buffer is over its high-water mark. Futures exist only while a send waits."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:  # cancelled before `set`
                self._waiters.remove(waiter)
        return True


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websocket protocol, offering `write_frame` and `continue_with` to the
    application."""

    transport: CoalescingTransport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asgi_app = self.app
        self.app = self.app_then_continuation
        self.continuation: Coroutine[Any, Any, Any] | None = None
        # uvicorn builds its `ServerProtocol` here; the subclass adds behaviour and no state, so the
        # built one takes it on rather than being built a second time for every connection.
        self.conn.__class__ = MidMessageCloseProtocol
        self.queue = InboundQueue()  # type: ignore[assignment] # what uvicorn uses of asyncio.Queue
        self.writable = Writable()  # type: ignore[assignment] # what uvicorn uses of asyncio.Event
        self.text_decoder: codecs.IncrementalDecoder | None = None
        self.text_parts: list[str] = []
        self.frames_go_out = False
        """`write_frame` may write: accepted, uncompressed, writable, no Close sent, not lost (the
        transport's own closing is asked at each write). Kept up to date at each of those changes, so
        that a fan-out asks one question per recipient instead of six."""

    @property  # uvicorn's plain attribute, watched
    def close_sent(self) -> bool:
        return self._close_sent

    @close_sent.setter
    def close_sent(self, sent: bool) -> None:
        self._close_sent = sent
        if sent:
            self.frames_go_out = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = CoalescingTransport(self.transport, tick_flush(self.loop))

    def connection_lost(self, exc: Exception | None) -> None:
        self.frames_go_out = False
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        self.frames_go_out = False
        super().pause_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.open_frame_path()

    def open_frame_path(self) -> None:
        """Let `write_frame` write if the websocket is accepted, uncompressed, writable and open."""
        self.frames_go_out = (
            self.handshake_complete
            and not self.close_sent
            and not self.disconnected
            and not self.conn.extensions
            and self.writable.is_set()
        )

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # the ASGI task is created but has not run yet
            extensions: dict[str, Any] = self.scope["extensions"]
            extensions[FRAME_WRITER] = self.write_frame
            extensions[CONTINUE_WITH] = self.continue_with
            conn: MidMessageCloseProtocol = self.conn  # type: ignore[assignment] # its class, set above
            conn.parse_frames_only()

    async def app_then_continuation(self, scope: Any, receive: Any, send: Any) -> None:
        """What uvicorn runs as the application: the application, then its continuation if it left one."""
        try:
            await self.asgi_app(scope, receive, send)
        except BaseException:
            if self.continuation is not None:
                self.continuation.close()
                self.continuation = None
            raise
        continuation, self.continuation = self.continuation, None
        if continuation is not None:
            await continuation

    def continue_with(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Serve the connection with `coroutine` once the application returns."""
        self.continuation = coroutine

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            del self.request, self.response
            self.open_frame_path()
            # uvicorn's protocol has over 30 attributes, too many for a dict sharing its class's
            # keys; the one `__init__` grew keeps room for more, a copy is about half its size.
            self.__dict__ = dict(self.__dict__)

    def handle_text(self, event: Frame) -> None:
        """A text message whole is decoded at once; its first fragment starts a decoder."""
        self.curr_msg_data_type = "text"
        if event.fin:
            try:
                text = str(event.data, "utf-8")
            except UnicodeDecodeError:
                self.refuse_text()
                return
            event.data = b""  # websockets' parser holds its last frame until the next one comes
            self.hand_over({"type": "websocket.receive", "text": text})
            return
        self.text_decoder = _UTF8Decoder()
        self.text_parts = []
        self.decode_fragment(event)

    def handle_cont(self, event: Frame) -> None:
        if self.curr_msg_data_type == "text":
            self.decode_fragment(event)
        else:
            super().handle_cont(event)

    def decode_fragment(self, event: Frame) -> None:
        """Decode a fragment of a text message as it arrives; hand the message on at its last."""
        if self.text_decoder is None:  # the message was already refused
            return
        try:
            self.text_parts.append(self.text_decoder.decode(event.data, final=event.fin))
        except UnicodeDecodeError:
            self.refuse_text()
            return
        event.data = b""
        if event.fin:
            text = "".join(self.text_parts)
            self.text_decoder, self.text_parts = None, []
            self.hand_over({"type": "websocket.receive", "text": text})

    def refuse_text(self) -> None:
        """Invalid UTF-8 in a text message fails the connection with 1007 (RFC 6455 §8.1)."""
        self.text_decoder, self.text_parts = None, []
        self.conn.fail(CloseCode.INVALID_DATA, "invalid UTF-8")
        self.handle_parser_exception()

    def send_receive_event_to_app(self) -> None:
        """uvicorn's hand-over of a binary message (text goes through `handle_text`)."""
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        self.hand_over({"type": "websocket.receive", "bytes": data})

    def hand_over(self, message: dict[str, Any]) -> None:
        """Queue a message for the application, pausing reading only once `INBOUND_BACKLOG` wait.

        uvicorn pauses after every message; `receive` resumes reading once the queue is empty.
        Past `websocket.close` a message is dropped, as uvicorn does, and reading goes on until
        the client's Close arrives.
        """
        if self.close_sent:
            return
        self.queue.put_nowait(message)  # type: ignore[arg-type]
        if not self.read_paused and self.queue.qsize() >= INBOUND_BACKLOG:
            self.read_paused = True
            self.transport.pause_reading()

    def write_frame(self, frame: bytes) -> bool:
        """Write `frame` (from `server_frame`) as is; False if it has to go through `send` instead."""
        transport = self.transport
        if not self.frames_go_out or transport.transport.is_closing():
            return False
        transport.write(frame)
        return True


class TickFlush:
    """One event loop's connections written to this tick, whose tick one callback ends.

    The callback is scheduled (`call_soon`) when the first connection of a tick is written to: what
    a buffered write waits for is the end of the callbacks already due, never a timer. It writes
    out the buffers in the order the connections began to buffer (`buffered`), so the first
    messages of a tick leave first across connections too.
    """

    __slots__ = ("_loop", "_written", "buffered")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # held by the loop's entry in a weak mapping: not the loop
        self._written: list[CoalescingTransport] = []
        self.buffered: list[CoalescingTransport] = []
        """The connections that buffer this tick, in the order they began to."""

    def add(self, transport: CoalescingTransport) -> None:
        if not self._written:
            loop = self._loop()
            assert loop is not None, "a connection outlived its event loop"
            loop.call_soon(self.end_tick)
        self._written.append(transport)

    def end_tick(self) -> None:
        buffered, written = self.buffered, self._written
        self.buffered, self._written = [], []
        for transport in buffered:
            transport.flush()
        for transport in written:
            transport.end_tick()


_tick_flushes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TickFlush] = weakref.WeakKeyDictionary()


def tick_flush(loop: asyncio.AbstractEventLoop) -> TickFlush:
    """The `TickFlush` of `loop`."""
    flush = _tick_flushes.get(loop)
    if flush is None:
        flush = _tick_flushes[loop] = TickFlush(loop)
    return flush


class CoalescingTransport(asyncio.Transport):
    """A connection's transport whose writes within one loop tick reach it as one `write`.

    A connection written to once in its last tick is quiet: the first write of its next tick goes
    to the transport at once (a lone answer waits for nothing) unless another connection already
    buffers in this tick (it would overtake that one's earlier messages), and what follows it in
    the same tick is buffered. A connection written to more than once in a tick buffers every
    write of its next tick, from the first. Either way the buffer is written out, in one `write`,
    when the tick ends (`TickFlush`).

    Buffered bytes count as written: `get_write_buffer_size` includes them, and a write that takes
    the transport's buffer and them past its high-water mark writes them out at once, so the
    transport pauses the protocol (`pause_writing`) where it would have without the buffer. Closing,
    aborting and `write_eof` write them out first. Once the transport is closing (the connection was
    lost), what is still buffered is dropped, as the transport drops what it is given then.
    """

    __slots__ = ("_busy", "_pending", "_pending_size", "_room", "_tick", "_writes", "transport")

    def __init__(self, transport: asyncio.Transport, tick: TickFlush) -> None:
        # asyncio.BaseTransport's `__init__` would give it an `_extra` dict: `get_extra_info` is the
        # transport's own.
        self.transport = transport
        self._tick = tick
        self._pending: list[bytes | bytearray | memoryview] = []
        self._pending_size = 0
        self._room = 0
        self._writes = 0
        """Writes this tick."""
        self._busy = False
        """The last tick wrote more than once: this one buffers from its first write."""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self._writes += 1
        if self._writes == 1:
            self._tick.add(self)
            if not (self._busy or self._tick.buffered):
                self.transport.write(data)
                return
        if not self._pending:
            low_high = self.transport.get_write_buffer_limits()
            self._room = low_high[1] - self.transport.get_write_buffer_size()
            self._tick.buffered.append(self)
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size > self._room:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def end_tick(self) -> None:
        """The tick ended (its buffer is written out): how busy it was decides how the next begins."""
        self._busy = self._writes > 1
        self._writes = 0

    def flush(self) -> None:
        """Write out what this tick buffered, in one `write`."""
        pending = self._pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._pending_size = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + self._pending_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.transport.set_write_buffer_limits(high, low)

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self.flush()
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.transport.get_protocol()
