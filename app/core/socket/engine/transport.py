"""Engine.IO's transports as Parley serves them: bounded, with a deadline for every state, and honest.

python-engineio is used through its ASGI driver and these overrides (each says what it replaces):

- `ParleyEngine` replaces the websocket entry of the driver table and the queue factory, creates
  `ParleySocket`s, and answers long-polling POSTs itself: 413 for a body past the transport's
  limit (read no further), 408 for a body that does not arrive within the deadline, 400 for one
  that is no Engine.IO payload, each at once and never by waiting for the client to read;
- `ParleySocket` pings with a timer instead of a task, refuses a second long-polling GET while one
  waits, reports an unknown packet type instead of failing on it, and on close lets go of what its
  connection held;
- the websocket transport runs without a writer task and without a task per message: the reader
  awaits the ASGI `receive` directly and hands messages on in place; packets out go through the
  socket's `OutgoingQueue` (`outgoing.py`). An upgrade from long-polling must finish within the
  deadline.

What a client does wrong is reported to `TransportFaults` (the Socket.IO server), which logs one
line, counts it in `/metrics` and closes a transport that keeps sending garbage.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol
from urllib.parse import parse_qs

import engineio
from engineio import async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet

from app.core.http.websocket_protocol import CONTINUE_WITH, FRAME_WRITER, Continuation, FrameWriter
from app.core.socket.engine.outgoing import (
    ASGISend,
    BacklogLimit,
    OutgoingQueue,
    asgi_message,
    websocket_frame,
)
from app.core.socket.engine.polling import handle_post
from app.core.socket.timers import Pending, TimerHeap

logger = logging.getLogger(__name__)

ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
PING = eio_packet.Packet(eio_packet.PING)
_MESSAGE = str(eio_packet.MESSAGE)
PING.asgi_message = asgi_message(PING)
PING.frame = websocket_frame(PING)
"""One PING for every socket (`asgi_message` and `frame` are its encodings, cached)."""


def transport_label(eio_sid: str) -> str:
    """How log lines name an Engine.IO transport: a digest of its id, never the id itself, which is
    all it takes to read and write a long-polling session while it lasts."""
    return hashlib.blake2b(eio_sid.encode(), digest_size=6).hexdigest()


class TransportFaults(Protocol):
    """Where the transport reports what a client did wrong."""

    def malformed(self, eio_sid: str, why: str) -> Awaitable[None]:
        """A packet that breaks the protocol: dropped, counted, and the transport closed after a few."""
        ...

    def fault(self, eio_sid: str | None, kind: str, why: str) -> None:
        """Anything else the transport refused (`kind` labels the counter): one log line, naming the
        transport if there is one."""
        ...


class DirectWebSocket:
    """Engine.IO's ASGI websocket entry: serves the socket being connected or upgraded."""

    def __init__(self, handler: Callable[..., Any], server: ParleyEngine) -> None:
        # Engine.IO passes the socket's own handler, a bound method: its owner is the socket.
        self.socket = handler.__self__  # type: ignore[attr-defined]
        self.server = server

    async def __call__(self, environ: dict[str, Any]) -> str:
        """Accept, then serve the websocket; where the server offers `continue_with`, after Engine.IO's
        and the application's calls have returned, so an idle connection does not hold them."""
        receive: ASGIReceive = environ["asgi.receive"]
        send: ASGISend = environ["asgi.send"]
        extensions = environ["asgi.scope"].get("extensions") or {}
        write_frame: FrameWriter | None = extensions.get(FRAME_WRITER)
        continue_with: Continuation | None = extensions.get(CONTINUE_WITH)
        await send({"type": "websocket.accept"})
        serving = serve_websocket(self.socket, self.server, receive, send, write_frame)
        if continue_with is None:
            await serving
        else:
            continue_with(serving)
        return ""


async def serve_websocket(
    socket: ParleySocket,
    server: ParleyEngine,
    receive: ASGIReceive,
    send: ASGISend,
    write_frame: FrameWriter | None = None,
) -> None:
    """Read packets until the client leaves; packets to it are written by its queue (framed once
    per packet and written as is, where the server offers `write_frame`)."""
    queue = socket.queue
    upgrading = socket.connected
    if upgrading:
        if not await upgrade(socket, server, receive, send):
            return
    else:
        socket.connected = True
        socket.upgraded = True
    queue.attach(send, write_frame)
    try:
        await read_packets(socket, server, receive)
    finally:
        queue.close_websocket()
        await queue.join()
        await socket.close(wait=False, abort=True, reason=server.reason.TRANSPORT_CLOSE)
        queue.release()
        if not upgrading and server.sockets.get(socket.sid) is socket:
            # Engine.IO forgets a session that began on a websocket once its handler returns, which
            # may have been before this ran (`continue_with`).
            del server.sockets[socket.sid]


async def read_packets(socket: ParleySocket, server: ParleyEngine, receive: ASGIReceive) -> None:
    """Hand each packet on; a message goes to Socket.IO's handler in this reader, not in a task.

    Engine.IO would start a task for every message; what a message leads to that takes time
    (an event's handler) already runs in a task of its own.
    """
    limit = server.max_http_buffer_size
    on_message = server.handlers["message"]
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        data = message.get("text")
        if data is None:
            data = message.get("bytes")
        if data is None:
            return
        if len(data) > limit:
            server.faults.fault(socket.sid, "oversized", f"closing: a frame of {len(data)} bytes")
            return
        pkt = inbound_packet(data)
        if pkt is None:
            server.faults.fault(socket.sid, "malformed", "closing: a frame that is no Engine.IO packet")
            return
        kind, body = (eio_packet.MESSAGE, pkt) if isinstance(pkt, str) else (pkt.packet_type, pkt.data)
        try:
            if kind == eio_packet.MESSAGE:
                await on_message(socket.sid, body)
            else:
                await socket.receive(pkt)
                if socket.closed:  # the client's CLOSE: end the websocket too
                    return
        except eio_exceptions.UnknownPacketError:
            await server.faults.malformed(socket.sid, f"Engine.IO packet type {kind} from a client")
        except eio_exceptions.SocketIsClosedError:
            return
        except Exception:
            logger.exception("error handling a packet from transport %s", transport_label(socket.sid))
        del message, data, pkt  # not held while the next one is awaited, which may be for long


def inbound_packet(data: str | bytes) -> Any:
    """An Engine.IO packet from the client; for a message around a Socket.IO packet (whose type is a
    digit) its text alone, with no packet object: Engine.IO's decoder would try that text as JSON,
    fail on the digit and keep it as text. None if `data` is no Engine.IO packet."""
    if isinstance(data, str) and data[:1] == _MESSAGE and "0" <= data[1:2] <= "9":
        return data[1:]
    try:
        return eio_packet.Packet(encoded_packet=data)
    except (ValueError, IndexError):
        return None


async def upgrade(socket: ParleySocket, server: ParleyEngine, receive: ASGIReceive, send: ASGISend) -> bool:
    """Engine.IO's upgrade of a polling socket: `2probe` → `3probe`, end the poll, then `5`.

    It must finish within the deadline; one upgrade at a time. A failed upgrade closes only the
    websocket: the socket goes on polling, as Engine.IO clients expect.
    """
    if socket.upgrading:
        server.faults.fault(socket.sid, "out_of_order", "refused a second upgrade")
        return False
    socket.upgrading = True
    try:
        async with asyncio.timeout(server.deadline):
            probe = await _next_packet(receive)
            if probe is None or probe.packet_type != eio_packet.PING or probe.data != "probe":
                return False
            await send(asgi_message(eio_packet.Packet(eio_packet.PONG, data="probe")))
            socket.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            done = await _next_packet(receive)
    except TimeoutError:
        server.faults.fault(
            socket.sid, "deadline", "closing the websocket: the upgrade did not finish in time"
        )
        return False
    finally:
        socket.upgrading = False
    if done is None or done.packet_type != eio_packet.UPGRADE:
        return False
    socket.upgraded = True
    return True


async def _next_packet(receive: ASGIReceive) -> Any:
    message = await receive()
    data = message.get("text") if message["type"] == "websocket.receive" else None
    if data is None:
        return None
    try:
        return eio_packet.Packet(encoded_packet=data)
    except (ValueError, IndexError):  # a garbled upgrade fails the upgrade
        return None


class ParleySocket(async_socket.AsyncSocket):  # type: ignore[misc]
    """Engine.IO's socket (`engineio.async_socket.AsyncSocket`) with these overrides."""

    server: ParleyEngine
    queue: OutgoingQueue
    last_ping: float | None

    def __init__(self, server: ParleyEngine, sid: str) -> None:
        super().__init__(server, sid)
        self.queue.on_overflow = self._cut_off
        self._ping_timer: Pending | None = None
        self._inbound: asyncio.Lock | None = None

    def schedule_ping(self) -> None:
        """Replaces Engine.IO's task per ping (which holds the socket, and through its queue the
        connection, for a whole ping interval after the socket closed) with an entry of the server's
        `TimerHeap`, cancelled on close."""
        if self.last_ping and not self.closing and not self.closed:
            self.last_ping = None
            interval = self.server.ping_interval
            self._ping_timer = self.server.timers.call_later(interval, ParleySocket._ping, self)

    def _ping(self) -> None:
        self._ping_timer = None
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.queue.put_nowait(PING)

    async def receive(self, pkt: Any) -> None:
        """Engine.IO's `receive` without its failure on a packet type it has no name for (it logs the
        name first): a type a client may not send raises `UnknownPacketError` for the caller to report."""
        kind = pkt.packet_type
        if kind == eio_packet.PONG:
            self.schedule_ping()
        elif kind == eio_packet.MESSAGE:
            await self.server._trigger_event("message", self.sid, pkt.data, run_async=False)
        elif kind == eio_packet.UPGRADE:
            await self.send(eio_packet.Packet(eio_packet.NOOP))
        elif kind == eio_packet.CLOSE:
            await self.close(wait=False, abort=True, reason=self.server.reason.CLIENT_DISCONNECT)
        else:
            raise eio_exceptions.UnknownPacketError

    async def handle_get_request(self, environ: dict[str, Any]) -> Any:
        """A long-polling GET while another one waits breaks the protocol: 400, and the session
        closes (as Engine.IO's reference server does), instead of two readers sharing the queue."""
        connection = environ.get("HTTP_CONNECTION", "").lower()
        upgrading = "upgrade" in connection and environ.get("HTTP_UPGRADE", "").lower() == "websocket"
        if self.queue.reading and not upgrading:
            self.server.faults.fault(self.sid, "out_of_order", "closing: two long-polling GETs at once")
            await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
            return self.server._bad_request("Another poll is already waiting")
        return await super().handle_get_request(environ)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """Engine.IO's close, with its wait for the client to read the CLOSE packet bounded by the
        deadline (a long-polling client that never polls again held the socket forever), and what
        the socket still holds let go of once nothing more is for the client.

        A websocket's queue is released by its reader when the websocket ends.
        """
        if self._ping_timer is not None:
            self.server.timers.cancel(self._ping_timer)
            self._ping_timer = None
        await super().close(wait=False, abort=abort, reason=reason)
        if self.upgraded:
            # A websocket closes with its session. Engine.IO's own websocket reader gives up after
            # a ping interval and timeout of silence; this one waits on the client, so a session
            # that ended without a CLOSE packet (a ping timeout sends none) would leave it open.
            self.queue.close_websocket()
        if wait:
            try:
                async with asyncio.timeout(self.server.deadline):
                    await self.queue.join()
            except TimeoutError:
                logger.debug(
                    "transport %s closed without reading its CLOSE packet", transport_label(self.sid)
                )
        if not self.upgraded and (abort or self.queue.empty()):
            self.queue.release()

    def inbound(self) -> asyncio.Lock:
        """Held while a long-polling POST's packets are handed on, so they keep the client's order."""
        if self._inbound is None:
            self._inbound = asyncio.Lock()
        return self._inbound

    def _cut_off(self) -> None:
        """The backlog passed its limit: the queue dropped it; close the session at once."""
        limit = self.queue.limit
        self.server.faults.fault(
            self.sid,
            "backlog",
            f"cutting it off: it fell more than {limit.max_packets} packets "
            f"or {limit.max_bytes} bytes behind",
        )
        self.server.spawn(self.close(wait=False, abort=True, reason=self.server.reason.SERVER_DISCONNECT))


class ParleyEngine(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO's server with the transports above; `configure` before serving."""

    _async: dict[str, Any]
    start_service_task: bool
    backlog_limit: BacklogLimit
    deadline: float
    """Seconds an upgrade, a POST body or the read of a closing session's last packets may take."""
    faults: TransportFaults

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._async = {**self._async, "websocket": DirectWebSocket}
        self._tasks: set[asyncio.Task[None]] = set()
        self.timers = TimerHeap()
        """The sockets' pings, on one loop timer."""

    def configure(self, backlog_limit: BacklogLimit, deadline: float, faults: TransportFaults) -> None:
        """Set once by the Socket.IO server, before the first request."""
        self.backlog_limit = backlog_limit
        self.deadline = deadline
        self.faults = faults

    def create_queue(self, *_args: Any, **_kwargs: Any) -> OutgoingQueue:
        """Engine.IO's queue factory (an `asyncio.Queue` per socket): the bounded queue that writes
        through to a websocket (`outgoing.py`)."""
        return OutgoingQueue(self.backlog_limit)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in a task held until it ends."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle_connect(self, environ: dict[str, Any], transport: str, jsonp_index: Any = None) -> Any:
        """Engine.IO's handshake (`AsyncServer._handle_connect`), creating a `ParleySocket`; no cookie."""
        if self.start_service_task:
            self.start_service_task = False
            self.service_task_handle = self.start_background_task(self._service_task)
        sid = self.generate_id()
        socket = ParleySocket(self, sid)
        self.sockets[sid] = socket
        opened = {
            "sid": sid,
            "upgrades": self._upgrades(sid, transport),
            "pingTimeout": int(self.ping_timeout * 1000),
            # Engine.IO rounds the sum down to whole seconds before the product, so 0.3 s became 0
            "pingInterval": int((self.ping_interval + self.ping_interval_grace_period) * 1000),
            "maxPayload": self.max_http_buffer_size,
        }
        await socket.send(eio_packet.Packet(eio_packet.OPEN, opened))
        accepted = await self._trigger_event("connect", sid, environ, run_async=False)
        if accepted is not None and accepted is not True:
            del self.sockets[sid]
            return self._unauthorized(accepted or None)
        socket.schedule_ping()
        if transport == "websocket":
            served = await socket.handle_get_request(environ)
            if socket.closed:
                self.sockets.pop(sid, None)
            return served
        socket.connected = True
        try:
            return self._ok(await socket.poll(), jsonp_index=jsonp_index)
        except eio_exceptions.QueueEmpty:
            return self._bad_request()

    async def handle_request(self, *args: Any, **kwargs: Any) -> Any:
        """Long-polling POSTs are answered by `_handle_post`; a request naming no transport 400 (the
        protocol requires one; Engine.IO would take it for long-polling); the rest as Engine.IO does."""
        scope = args[0]
        if scope["type"] == "http" and scope.get("method") == "POST":
            await self._handle_post(scope, args[1], args[2])
            return None
        if "transport" not in parse_qs(scope.get("query_string", b"").decode("latin-1")):
            environ = await self._async["translate_request"](*args, **kwargs)
            return await self._make_response(self._bad_request("Invalid transport"), environ)
        return await super().handle_request(*args, **kwargs)

    async def _handle_post(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        """Replaces Engine.IO's POST handling (`handle_request` → `AsyncSocket.handle_post_request`).

        Engine.IO reads a body of any size, answers an undecodable one 200 after logging a
        traceback, and answers an oversized one only once the client has read the CLOSE packet.
        Here the answer comes first (within the deadline) and the packets are handed on after it,
        in order (`polling.py`).
        """
        await handle_post(self, scope, receive, send)

    sid_prefix = ""
    """Names the process owning each session (see `app.core.socket.sids`); set by the app factory."""

    def generate_id(self) -> str:
        return self.sid_prefix + str(super().generate_id())
