"""uvicorn's HTTP protocol with a deadline for every request's head.

uvicorn times a connection out only while it is idle between two requests: a client that opens a
connection and sends nothing, or trickles a request line and headers (a websocket's opening
handshake among them), holds it for as long as it likes (uvicorn issue #157). Served with
`--http app.core.http.server_protocol:HeadDeadlineProtocol` (as `parley serve` does), a head that
has not fully arrived within SOCKET_CONNECT_TIMEOUT of the connection opening or of its first byte
is answered 408 and the connection closed. Bodies are the application's business: Engine.IO's are
held to the same deadline by its POST handling.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config.settings import get_settings

logger = logging.getLogger(__name__)

TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 15\r\nconnection: close\r\n\r\nRequest timeout"
)


@cache
def head_deadline() -> float:
    """Seconds a request's head may take (SOCKET_CONNECT_TIMEOUT, read once per process)."""
    return get_settings().socket.connect_timeout


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's `HttpToolsProtocol`, armed when a connection opens and when a request begins,
    disarmed once the request's headers are complete (or the connection is gone)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override] # as uvicorn
        super().connection_made(transport)
        self._expect_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._expect_head()

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _expect_head(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(head_deadline(), self._head_late)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        logger.warning(
            "closing a connection from %s: no complete request head within %gs",
            self.client[0] if self.client else "?",
            head_deadline(),
        )
        self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()
