"""python-socketio's AsyncServer, hardened at the packet boundary.

Every inbound packet is treated as hostile: after the handshake no packet may change who the socket
is (a second CONNECT is dropped), malformed packets are counted and logged once without a traceback,
oversized ones are answered `PAYLOAD_TOO_LARGE` while the socket stays up, and events go to the
runtime's dispatcher, which always answers (ack or `exception` event). It is also where the
transport reports faults (`TransportFaults`): one log line each, a `parley_transport_faults_total`
counter by kind, and the malformed-packet limit on both transports.

A transport must join `/` within the connect timeout; a socket counts as connected only once its
CONNECT was answered on a transport that is still there, and is uncounted however it ends.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import Any, Protocol

import socketio
from socketio import packet

from app.config.settings import SocketSettings
from app.core.metrics import Metrics
from app.core.socket import json as socket_json
from app.core.socket.engine.inbound import decode_event
from app.core.socket.engine.outgoing import BacklogLimit
from app.core.socket.engine.transport import ParleyEngine, transport_label

logger = logging.getLogger(__name__)

NAMESPACE = "/"
MAX_MALFORMED_PACKETS = 5
# `2[/namespace,][ack id]["event", …` — enough of an oversized packet to answer it.
_EVENT_HEAD = re.compile(r'^2(?:/[^,]*,)?(\d*)\["([^"\\]{1,100})"')


class EventSink(Protocol):
    """What the server hands decoded traffic to (the socket runtime)."""

    def authenticate(self, sid: str, environ: dict[str, Any], auth: Any) -> Awaitable[None]: ...

    def connected(self, sid: str) -> Awaitable[None]: ...

    def disconnected(self, sid: str, reason: str) -> Awaitable[None]: ...

    def event(
        self, sid: str, eio_sid: str, event: str, args: list[Any], ack_id: int | None
    ) -> Awaitable[None]: ...

    def oversized(
        self, sid: str, eio_sid: str, event: str, ack_id: int | None, size: int
    ) -> Awaitable[None]: ...

    def undecodable(self, sid: str, eio_sid: str, event: str, ack_id: int | None) -> Awaitable[None]: ...

    def user_of(self, sid: str) -> str | None: ...


def origin_checker(allowed: tuple[str, ...]) -> Any:
    """An explicit allowlist; with none configured, only the Host the request was sent to.

    Forwarded headers are never consulted, so a proxy header cannot widen the list.
    """
    allowed_set = {origin.rstrip("/") for origin in allowed}

    def check(origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return False  # no Origin header: not a browser; Engine.IO admits it and adds no CORS headers
        if allowed_set:
            return "*" in allowed_set or origin.rstrip("/") in allowed_set
        host = environ.get("HTTP_HOST", "")
        scheme = environ.get("wsgi.url_scheme", "http")
        return origin.rstrip("/") == f"{scheme}://{host}"

    return check


def encoded_size(text: str, limit: int) -> int:
    """The UTF-8 size of a text packet, exact whenever it could exceed `limit`.

    Encodes only when the character count cannot settle the comparison with `limit`.
    """
    if len(text) > limit or len(text) * 4 <= limit:
        return len(text)
    return len(text.encode())


class TransportServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server on Parley's Engine.IO transport (`ParleyEngine`), nothing else changed.

    `ParleyServer` builds Parley's packet handling on it; on its own it serves the Socket.IO protocol
    as python-socketio does, which is how socket.io's protocol test suite checks the transport
    (`tests/e2e/conformance/socketio/`). Its `eio` is to be configured before serving.
    """

    eio: ParleyEngine

    def _engineio_server_class(self) -> type[ParleyEngine]:
        return ParleyEngine


class ParleyServer(TransportServer):
    def __init__(self, settings: SocketSettings, client_manager: Any, metrics: Metrics) -> None:
        super().__init__(
            client_manager=client_manager,
            async_mode="asgi",
            json=socket_json,
            namespaces=[NAMESPACE],
            cors_allowed_origins=origin_checker(settings.cors_origins),
            # The transport's hard cap sits above the protocol limit, so an event a little too
            # large is answered PAYLOAD_TOO_LARGE instead of closing the connection.
            max_http_buffer_size=settings.max_payload_bytes * 2 + 1024,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            transports=["polling", "websocket"],
            logger=False,
            engineio_logger=False,
        )
        self.settings = settings
        self.metrics = metrics
        self.sink: EventSink | None = None
        self._malformed: dict[str, int] = {}
        self.eio.configure(
            BacklogLimit(settings.max_backlog_bytes, settings.max_backlog_packets),
            settings.connect_timeout,
            self,
        )
        self._join_deadlines: dict[str, asyncio.TimerHandle] = {}
        self.on("connect", self._on_connect)
        self.on("disconnect", self._on_disconnect)

    def attach_sink(self, sink: EventSink) -> None:
        self.sink = sink

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        assert self.sink is not None
        await self.sink.authenticate(sid, environ, auth)

    async def _on_disconnect(self, sid: str, reason: str = "") -> None:
        assert self.sink is not None
        await self.sink.disconnected(sid, str(reason))

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        """A transport must join the namespace within the connect timeout, or it is closed.

        The connect request is a GET: its body reader (an object of a class Engine.IO defines per
        request, over 2 KiB) is never read, yet the environ lives as long as the connection.
        """
        environ.pop("wsgi.input", None)
        result = await super()._handle_eio_connect(eio_sid, environ)
        loop = asyncio.get_running_loop()
        self._join_deadlines[eio_sid] = loop.call_later(
            self.settings.connect_timeout, self._close_if_not_joined, eio_sid
        )
        return result

    def _close_if_not_joined(self, eio_sid: str) -> None:
        """A connect still being authenticated has not joined either."""
        self._join_deadlines.pop(eio_sid, None)
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        if sid is None or not self.manager.is_connected(sid, NAMESPACE):
            self.fault(eio_sid, "deadline", "closing: it never joined the namespace")
            self._close_transport(eio_sid)

    def _close_transport(self, eio_sid: str) -> None:
        """Close an Engine.IO transport after its queued packets, without blocking the caller.

        Closing waits until the client has read what is queued; run inline, that would hold a
        polling POST (or a websocket's reader) until then.
        """
        self.start_background_task(self.eio.disconnect, eio_sid)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        """python-socketio's handling of a closed transport, forgetting its deadline and its count of
        malformed packets first."""
        deadline = self._join_deadlines.pop(eio_sid, None)
        if deadline is not None:
            deadline.cancel()
        self._malformed.pop(eio_sid, None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _handle_connect(self, eio_sid: str, namespace: str, data: Any) -> None:
        """python-socketio's CONNECT handling, refusing a second CONNECT, undoing one admitted after
        its transport closed, and ending the connect deadline once the socket is in."""
        namespace = namespace or NAMESPACE
        if self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
            await self.malformed(eio_sid, "CONNECT on an already connected namespace")
            return
        await super()._handle_connect(eio_sid, namespace, data)
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None and self.manager.is_connected(sid, namespace) and self._transport_gone(eio_sid):
            # The transport ended while the connect handler ran, and Engine.IO's disconnect skipped
            # the namespace as not connected yet: undo the connect, so nothing stays counted.
            logger.info(
                "socket %s was admitted after its transport closed; undoing it", sid, extra=self._who(eio_sid)
            )
            await self._handle_disconnect(eio_sid, namespace, self.reason.TRANSPORT_CLOSE)
            return
        if sid is None or not self.manager.is_connected(sid, namespace):
            # Refused: `connect_error` is queued. Unless `/` is connected on this transport, closing
            # a long-polling one behind that ends the client's pending GET now instead of at the next
            # ping. A websocket client closes its transport itself once it has read the refusal
            # (closing it from here too can leave python-engineio's client waiting a ping interval),
            # and one that does not is closed by the connect deadline.
            transport = self.eio.sockets.get(eio_sid)
            polling = transport is not None and not transport.upgraded
            if polling and self.manager.sid_from_eio_sid(eio_sid, NAMESPACE) is None:
                self._close_transport(eio_sid)
            return
        deadline = self._join_deadlines.pop(eio_sid, None)
        if deadline is not None:
            deadline.cancel()
        self._forget_request_headers(eio_sid)
        assert self.sink is not None
        await self.sink.connected(sid)

    def _transport_gone(self, eio_sid: str) -> bool:
        transport = self.eio.sockets.get(eio_sid)
        return transport is None or transport.closing or transport.closed

    def _forget_request_headers(self, eio_sid: str) -> None:
        """Drop the handshake's headers once the socket is admitted: nothing reads them again, and
        a browser's (cookies, user agent) would otherwise stay in memory as long as the connection.

        They go from the environ and from the ASGI scope it was made of. The environ is emptied and
        refilled rather than deleted from, as a dict keeps its size when keys go: the same dict
        (Engine.IO's request handling holds it too) is then sized for what is left.
        """
        environ = self.environ.get(eio_sid)
        if environ is not None:
            kept = {key: value for key, value in environ.items() if not key.startswith("HTTP_")}
            environ.clear()
            environ.update(kept)
            scope = environ.get("asgi.scope")
            if scope is not None:
                scope["headers"] = []

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Decode one packet defensively and route it; never let a client raise out of here."""
        if isinstance(data, bytes):
            await self.malformed(eio_sid, "binary packets are not part of this protocol")
            return
        size = encoded_size(data, self.settings.max_payload_bytes)
        if size > self.settings.max_payload_bytes:
            await self._oversized(eio_sid, data, size)
            return
        try:
            pkt: Any = decode_event(data) or self.packet_class(encoded_packet=data)
        except Exception:  # noqa: BLE001 - any decode failure is the client's fault
            await self._answer_undecodable(eio_sid, data)
            await self.malformed(eio_sid, "undecodable packet")
            return
        kind = pkt.packet_type
        if kind == packet.CONNECT:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
            self._close_transport(eio_sid)  # `/` is the only namespace: the transport has no use left
        elif kind == packet.EVENT:
            await self._route_event(eio_sid, pkt)
        elif kind == packet.ACK:
            await self._route_ack(eio_sid, pkt)
        else:
            await self.malformed(eio_sid, f"unexpected packet type {kind}")

    async def _route_event(self, eio_sid: str, pkt: Any) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or NAMESPACE)
        if sid is None or not self.manager.is_connected(sid, NAMESPACE):
            await self.malformed(eio_sid, "event before the namespace handshake")
            return
        if not isinstance(pkt.data, list) or not pkt.data or not isinstance(pkt.data[0], str):
            await self.malformed(eio_sid, "event without a name")
            return
        assert self.sink is not None
        await self.sink.event(sid, eio_sid, pkt.data[0], pkt.data[1:], pkt.id)

    async def _route_ack(self, eio_sid: str, pkt: Any) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, pkt.namespace or NAMESPACE)
        # Id 0 of the manager's per-socket table is its id counter, not a callback.
        asked = sid is not None and isinstance(pkt.id, int) and pkt.id > 0
        if not asked or pkt.id not in self.manager.callbacks.get(sid, {}) or not isinstance(pkt.data, list):
            await self.malformed(eio_sid, "ack for nothing that was asked")
            return
        await self.manager.trigger_callback(sid, pkt.id, pkt.data)

    async def _oversized(self, eio_sid: str, data: str, size: int) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        if sid is None or self.sink is None:
            await self.malformed(eio_sid, "oversized packet before the handshake")
            return
        match = _EVENT_HEAD.match(data[:200])
        ack_id = int(match.group(1)) if match and match.group(1) else None
        event = match.group(2) if match else "unknown"
        await self.sink.oversized(sid, eio_sid, event, ack_id, size)

    async def _answer_undecodable(self, eio_sid: str, data: str) -> None:
        """An event of a connected socket whose name can be read but whose arguments cannot (JSON
        nested too deeply, say) is answered like any invalid payload; it still counts as malformed."""
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        match = _EVENT_HEAD.match(data[:200])
        if sid is not None and self.sink is not None and match is not None:
            ack_id = int(match.group(1)) if match.group(1) else None
            await self.sink.undecodable(sid, eio_sid, match.group(2), ack_id)

    async def malformed(self, eio_sid: str, why: str) -> None:
        """Count a malformed packet; log the first offence of a transport, close it after a few."""
        self.metrics.transport_faults.labels("malformed").inc()
        count = self._malformed.get(eio_sid, 0) + 1
        self._malformed[eio_sid] = count
        if count == 1:
            logger.warning(
                "dropped a packet from transport %s: %s",
                transport_label(eio_sid),
                why,
                extra=self._who(eio_sid),
            )
        if count >= MAX_MALFORMED_PACKETS:
            logger.warning(
                "closing transport %s after %d malformed packets",
                transport_label(eio_sid),
                count,
                extra=self._who(eio_sid),
            )
            self._malformed.pop(eio_sid, None)
            self._close_transport(eio_sid)

    def fault(self, eio_sid: str | None, kind: str, why: str) -> None:
        """Count anything else the transport refused, in one log line."""
        self.metrics.transport_faults.labels(kind).inc()
        if eio_sid is None:
            logger.warning("%s", why)
        else:
            logger.warning("transport %s: %s", transport_label(eio_sid), why, extra=self._who(eio_sid))

    def _who(self, eio_sid: str) -> dict[str, str]:
        """`sid` and `user_id` of a transport for log lines, where known."""
        sid = self.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        user_id = self.sink.user_of(sid) if sid is not None and self.sink is not None else None
        return {key: value for key, value in (("sid", sid), ("user_id", user_id)) if value is not None}

    async def send_ack(self, eio_sid: str, ack_id: int, data: Any) -> None:
        """Encode the ack of an event (`3<id>[data]` on `/`) and hand it straight to the transport."""
        transport = self.eio.sockets.get(eio_sid)
        if transport is not None and not transport.closed:
            transport.queue.put_message(f"{packet.ACK}{ack_id}{socket_json.dumps([data])}")
