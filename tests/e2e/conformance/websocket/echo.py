"""An ASGI echo app for the websocket conformance run: every message back as it came, text or binary.

Served by uvicorn with Parley's websocket protocol (`FrameWritingProtocol`); a message goes back
through the connection's `write_frame` (framed once, as a broadcast is) whenever the protocol takes
it, else through the ASGI `send`, so both of Parley's ways out are exercised. `/health` answers 200
for the test server's start-up check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.core.http.websocket_protocol import FRAME_WRITER, FrameWriter, server_frame

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "websocket":
        await serve_echo(scope, receive, send)


async def serve_echo(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    write_frame: FrameWriter | None = (scope.get("extensions") or {}).get(FRAME_WRITER)
    while (message := await receive())["type"] == "websocket.receive":
        payload: str | bytes = message["text"] if message.get("text") is not None else message["bytes"]
        if write_frame is None or not write_frame(server_frame(payload)):
            key = "text" if isinstance(payload, str) else "bytes"
            await send({"type": "websocket.send", key: payload})


def create_echo() -> Callable[..., Awaitable[None]]:
    """The app factory (`uvicorn --factory`)."""
    return echo
