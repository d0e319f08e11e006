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

Two more changes keep a connection lean and its messages cheap: the opening handshake's request and
response are let go of once the websocket is accepted (nothing reads them again, and they would stay
as long as the connection), and reading pauses only once `INBOUND_BACKLOG` messages wait for the
application, instead of after every message (uvicorn pauses and resumes the transport's reading for
each one, two system calls per message on uvloop).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

FRAME_WRITER = "parley.websocket.write_frame"
"""The ASGI scope extension holding an accepted websocket's `FrameWriter`."""

FrameWriter = Callable[[bytes], bool]
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


class FrameWritingProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O websocket protocol, offering `write_frame` to the application."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # the ASGI task is created but has not run yet
            extensions: dict[str, Any] = self.scope["extensions"]
            extensions[FRAME_WRITER] = self.write_frame

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            del self.request, self.response

    def send_receive_event_to_app(self) -> None:
        """uvicorn's hand-over of a message, pausing reading only once `INBOUND_BACKLOG` messages wait.

        uvicorn pauses unless `read_paused` says it already has; that flag is raised for the call
        while the backlog is short, and `receive` then resumes nothing, since reading never paused.
        """
        if self.read_paused or self.queue.qsize() + 1 >= INBOUND_BACKLOG:
            super().send_receive_event_to_app()
            return
        self.read_paused = True
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = False

    def write_frame(self, frame: bytes) -> bool:
        """Write `frame` (from `server_frame`) as is; False if it has to go through `send` instead."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.conn.extensions
            or not self.writable.is_set()
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True
