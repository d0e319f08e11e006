"""One serving process: uvicorn, configured for Parley, with a graceful stop that loses nothing.

uvicorn's own stop closes every open connection first (websockets with code 1012) and only then runs
the app's lifespan shutdown, so handlers still running could no longer ack. `NodeServer` drains the
socket runtime in between: it stops accepting, refuses new Engine.IO sessions, lets running handlers
finish and ack, closes each transport so that clients reconnect elsewhere, and then lets uvicorn
close what is left.
"""

from __future__ import annotations

import signal
import socket
import sys
import urllib.parse
from types import FrameType
from typing import Any

import uvicorn

from app.asgi import leave_startup_to_the_collector
from app.config.settings import Settings
from app.core.http.server_protocol import HeadDeadlineProtocol
from app.core.http.websocket_protocol import FrameWritingProtocol
from app.core.socket.runtime import SocketRuntime
from app.main import create_app
from app.serve.handoff import SOCKET_IO_PATH

CONNECTIONS_CLOSE_WITHIN = 5
"""Seconds uvicorn waits, after the drain, for the last responses before cutting connections."""
REFUSED_BODY = b"The server is shutting down; connect again"

ASGIApp = Any


class HandshakeGate:
    """Refuses new Engine.IO sessions once the server is stopping: 503 with `Connection: close`, so a
    client (or nginx) tries again elsewhere. Requests of existing sessions pass until they close."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.closed = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self.closed and _opens_a_session(scope):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": REFUSED_BODY})
            return
        await self.app(scope, receive, send)


def _opens_a_session(scope: dict[str, Any]) -> bool:
    if scope["type"] not in {"http", "websocket"} or not scope["path"].startswith(SOCKET_IO_PATH):
        return False
    return "sid" not in urllib.parse.parse_qs(scope["query_string"].decode("latin-1"))


def uvicorn_config(settings: Settings, app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """The uvicorn settings of every Parley process (one node, or each worker)."""
    trusted = list(settings.serve.trusted_proxies)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=HeadDeadlineProtocol,
        ws=FrameWritingProtocol,
        # Off unless SOCKET_WS_COMPRESSION: a compressed websocket holds zlib state for as long as it
        # is open and compresses every broadcast again, instead of taking its frame as is.
        ws_per_message_deflate=settings.socket.ws_compression,
        ws_max_size=settings.socket.max_payload_bytes * 2 + 1024,
        # Engine.IO's ping/pong already finds dead clients; a second heartbeat in the websocket
        # layer would cost every idle connection a timer and a frame each way every 20 s.
        ws_ping_interval=None,
        ws_ping_timeout=None,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=CONNECTIONS_CLOSE_WITHIN,
        # X-Forwarded-For / -Proto are believed only from TRUSTED_PROXIES, so per-address limits
        # see the client behind a proxy, and nobody else can pick the address they are counted by.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )


class NodeServer(uvicorn.Server):
    """uvicorn's server around the app of this process, with the drain (module docstring) at the
    start of its shutdown; `worker` is the process's index under `parley serve --workers N`."""

    def __init__(self, settings: Settings, host: str, port: int, worker: int | None = None) -> None:
        self.parley = create_app(settings, worker=worker)
        leave_startup_to_the_collector()
        self.runtime = self.parley.context.get(SocketRuntime)
        self.gate = HandshakeGate(self.parley.asgi)
        super().__init__(uvicorn_config(settings, self.gate, host, port))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.stop_accepting()
        self.gate.closed = True
        await self.runtime.drain()
        await super().shutdown(sockets)

    def stop_accepting(self) -> None:
        for server in getattr(self, "servers", []):
            server.close()


def serve_one(settings: Settings, host: str, port: int) -> None:
    """Serve in this process until SIGTERM or Ctrl-C; exits with status 3 if start-up fails."""
    server = NodeServer(settings, host, port)
    stop_quietly_after_shutdown()
    server.run()
    if not server.started:
        sys.exit(uvicorn.config.STARTUP_FAILURE)


def stop_quietly_after_shutdown() -> None:
    """Let the process end with exit status 0 after a graceful stop on SIGTERM or Ctrl-C.

    uvicorn shuts down on the signal, then raises it again against the handler that was in place
    before; with the default handlers that kills the process (status -15) or raises KeyboardInterrupt.
    """
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _already_stopped)


def _already_stopped(_signum: int, _frame: FrameType | None) -> None:
    """The server has already stopped gracefully when this runs; nothing is left to do."""
