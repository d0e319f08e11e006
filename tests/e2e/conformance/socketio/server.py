"""The server socket.io's protocol test suite (vendored here) expects, on either transport.

The suite's README names it: namespaces `/` and `/custom`, each emitting `auth` with the handshake's
auth payload on connect; `/` echoing `message` as `message-back` and answering `message-with-ack`
with its arguments; ping interval 300 ms, ping timeout 200 ms, `maxPayload` 1,000,000, any origin.
`create_parley` serves it with Parley's transport (`TransportServer`: python-socketio on
`ParleyEngine`, run by the test under uvicorn with `FrameWritingProtocol`); `create_upstream` with
plain python-socketio, to compare. Both answer `/health` for the test server's start-up check.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

from app.core.socket.engine.outgoing import BacklogLimit
from app.core.socket.engine.server import TransportServer

logger = logging.getLogger(__name__)

SETTINGS: dict[str, Any] = {
    "async_mode": "asgi",
    "ping_interval": 0.3,
    "ping_timeout": 0.2,
    "max_http_buffer_size": 1_000_000,
    "cors_allowed_origins": "*",
    "namespaces": ["/", "/custom"],
    "always_connect": True,  # CONNECT is answered before the handler emits `auth`
}
CONNECT_TIMEOUT = 1.0
"""The reference server's `connectTimeout`: an upgrade or a POST body has this long."""


class LoggedFaults:
    """Where `ParleyEngine` reports what a client did wrong: a log line each."""

    async def malformed(self, eio_sid: str, why: str) -> None:
        logger.warning("malformed packet on %s: %s", eio_sid, why)

    def fault(self, eio_sid: str | None, kind: str, why: str) -> None:
        logger.warning("%s on %s: %s", kind, eio_sid, why)


def serve_suite(sio: socketio.AsyncServer) -> None:
    """The suite's handlers on `sio`."""

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.emit("auth", auth or {}, to=sid)

    async def connect_custom(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        await sio.emit("auth", auth or {}, to=sid, namespace="/custom")

    async def message(sid: str, *args: Any) -> None:
        await sio.emit("message-back", args, to=sid)

    async def message_with_ack(sid: str, *args: Any) -> tuple[Any, ...]:
        return args

    sio.on("connect", connect)
    sio.on("connect", connect_custom, namespace="/custom")
    sio.on("message", message)
    sio.on("message-with-ack", message_with_ack)


async def health(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def create_parley() -> socketio.ASGIApp:
    """The suite's server on Parley's transport (`uvicorn --factory`)."""
    sio = TransportServer(**SETTINGS)
    sio.eio.configure(BacklogLimit(1 << 20, 1024), CONNECT_TIMEOUT, LoggedFaults())
    serve_suite(sio)
    return socketio.ASGIApp(sio, other_asgi_app=health)


def create_upstream() -> socketio.ASGIApp:
    """The same server on python-socketio and python-engineio as published."""
    sio = socketio.AsyncServer(**SETTINGS)
    serve_suite(sio)
    return socketio.ASGIApp(sio, other_asgi_app=health)
