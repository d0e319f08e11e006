"""Long-polling POSTs, answered before their packets are handed on.

Every POST gets its answer within the deadline: 400 for a session it cannot post to or a body that
is no Engine.IO payload, 413 for a body past the transport's limit (no more of it is read), 408 for
one that does not arrive in time, 200 otherwise. The packets of an accepted body are handed on after
the answer, under the socket's inbound lock, so they keep the client's order across POSTs.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import TYPE_CHECKING, Any

from engineio import packet as eio_packet
from engineio import payload as eio_payload

if TYPE_CHECKING:
    from app.core.socket.engine.outgoing import ASGISend
    from app.core.socket.engine.transport import ASGIReceive, ParleyEngine, ParleySocket


CLIENT_POSTS = frozenset({eio_packet.CLOSE, eio_packet.PONG, eio_packet.MESSAGE})
"""The Engine.IO packets a long-polling client sends."""


class BodyTooLargeError(Exception):
    """The body is larger than the transport accepts; `more` if the client has more of it to send."""

    def __init__(self, more: bool) -> None:
        super().__init__("body too large")
        self.more = more


class ClientGoneError(Exception):
    """The client disconnected before its body arrived."""


def refusal(status: str, message: str) -> dict[str, Any]:
    """An Engine.IO response dict of an error that ends the connection after it."""
    return {
        "status": status,
        "headers": [("Content-Type", "text/plain"), ("Connection", "close")],
        "response": message.encode(),
    }


async def handle_post(
    engine: ParleyEngine, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend
) -> None:
    deadline = asyncio.get_running_loop().time() + engine.deadline
    try:
        async with asyncio.timeout_at(deadline):
            first = await receive()
    except TimeoutError:
        engine.faults.fault(None, "deadline", "a long-polling POST sent no body within the deadline")
        await send_timeout(send)
        return
    if first["type"] != "http.request":
        return

    async def replay() -> dict[str, Any]:
        return first

    environ = await engine._async["translate_request"](scope, replay, send)
    answer, socket = session_of(engine, environ)
    if socket is None:
        await engine._make_response(answer, environ)
        return
    try:
        async with asyncio.timeout_at(deadline):
            body = await read_body(first, receive, environ, engine.max_http_buffer_size)
    except ClientGoneError:
        return
    except BodyTooLargeError as refused:
        engine.faults.fault(socket.sid, "oversized", "closing: a long-polling POST too large")
        if refused.more:
            await skip_body(receive, engine.max_http_buffer_size, deadline)
        await close_after(engine, socket, refusal("413 PAYLOAD TOO LARGE", "Payload too large"), environ)
        return
    except TimeoutError:
        engine.faults.fault(socket.sid, "deadline", "closing: a POST body that did not arrive in time")
        await close_after(engine, socket, refusal("408 REQUEST TIMEOUT", "Request timeout"), environ)
        return
    packets = decode(body)
    if packets is None:
        await engine._make_response(engine._bad_request("Not an Engine.IO payload"), environ)
        await engine.faults.malformed(socket.sid, "a long-polling body that is no Engine.IO payload")
        return
    await engine._make_response(engine._ok(), environ)
    await hand_on(socket, packets)


def decode(body: bytes) -> list[Any] | None:
    """The packets of a payload a client may post (messages, pongs, a close), or None."""
    try:
        packets: list[Any] = eio_payload.Payload(encoded_payload=body.decode("utf-8")).packets
    except (ValueError, KeyError, IndexError):  # not UTF-8, or no Engine.IO payload
        return None
    if any(pkt.packet_type not in CLIENT_POSTS for pkt in packets):
        return None
    return packets


def session_of(engine: ParleyEngine, environ: dict[str, Any]) -> tuple[dict[str, Any], ParleySocket | None]:
    """The socket a POST is for, or the 400 answer Engine.IO gives when it cannot post to one."""
    origin = environ.get("HTTP_ORIGIN")
    if engine.cors_allowed_origins != [] and origin:
        allowed = engine._cors_allowed_origins(environ)
        if allowed is not None and origin not in allowed:
            return engine._bad_request(f"{origin} is not an accepted origin."), None
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "j" in query:
        return engine._bad_request("JSONP is not supported"), None
    sid = query["sid"][0] if "sid" in query else None
    socket = engine.sockets.get(sid) if sid is not None else None
    if socket is None or socket.closed:
        return engine._bad_request(f"Invalid session {sid}"), None
    if not socket.connected:
        return engine._bad_request("Not connected"), None
    if socket.upgraded:
        return engine._bad_request("Unexpected HTTP request"), None
    return {}, socket


async def read_body(
    first: dict[str, Any], receive: ASGIReceive, environ: dict[str, Any], limit: int
) -> bytes:
    """The whole body, read no further than `limit` bytes (nor at all when Content-Length says more)."""
    try:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BodyTooLargeError(first.get("more_body", False))
    chunks: list[bytes] = []
    size = 0
    event = first
    while True:
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(event.get("more_body", False))
        chunks.append(chunk)
        if not event.get("more_body", False):
            return b"".join(chunks)
        event = await receive()
        if event["type"] != "http.request":
            raise ClientGoneError


async def skip_body(receive: ASGIReceive, budget: int, deadline: float) -> None:
    """Read and drop what is left of a refused body, up to `budget` bytes and the deadline.

    The answer then reaches a client that sent a body a little too large and reads the answer only
    once it has sent it all; closing the connection with its bytes unread would reset it first.
    A client that sends more is cut off without a drained connection.
    """
    skipped = 0
    try:
        async with asyncio.timeout_at(deadline):
            while skipped <= budget:
                event = await receive()
                skipped += len(event.get("body", b""))
                if event["type"] != "http.request" or not event.get("more_body", False):
                    return
    except TimeoutError:
        return


async def close_after(
    engine: ParleyEngine, socket: ParleySocket, answer: dict[str, Any], environ: dict[str, Any]
) -> None:
    """Answer, then close the session; its pending GET, if any, receives the CLOSE packet."""
    await engine._make_response(answer, environ)
    engine.spawn(socket.close(wait=False, reason=engine.reason.TRANSPORT_ERROR))


async def send_timeout(send: ASGISend) -> None:
    """408 before the request could be read at all (so without Engine.IO's CORS headers)."""
    headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": b"Request timeout"})


async def hand_on(socket: ParleySocket, packets: list[Any]) -> None:
    async with socket.inbound():
        for pkt in packets:
            if socket.closed:
                return
            await socket.receive(pkt)
