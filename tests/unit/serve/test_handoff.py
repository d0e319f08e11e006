"""How a connection travels between the supervisor and the workers: request lines and real sockets."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from app.serve.handoff import MAX_HEAD, Channel, answer_and_close, channel_pair, has_request_line, session_of


@pytest.mark.parametrize(
    ("head", "sid"),
    [
        (b"GET /socket.io/?EIO=4&transport=polling&sid=2.AbC-_x HTTP/1.1\r\nHost: x\r\n", "2.AbC-_x"),
        (b"POST /socket.io/?EIO=4&sid=a.0.AbC&transport=polling HTTP/1.1\r\n", "a.0.AbC"),
        (b"GET /socket.io/?EIO=4&transport=websocket&sid=1.Q HTTP/1.1\r\nUpgrade: websocket\r\n", "1.Q"),
        (b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n", None),  # a new session
        (b"GET /api/conversations?sid=1.Q HTTP/1.1\r\n", None),  # not Engine.IO
        (b"GET /health HTTP/1.1\r\n", None),
        (b"\x16\x03\x01\x02\x00\x01\x00", None),  # TLS, or any bytes that are no request line
        (b"GET /socket.io/?sid=1.Q\r\n", None),  # no HTTP version
    ],
)
def test_session_of_reads_the_sid_of_an_engine_io_request(head: bytes, sid: str | None) -> None:
    assert session_of(head) == sid


def test_a_request_line_is_complete_at_its_newline_or_at_the_cap() -> None:
    assert not has_request_line(b"GET /socket.io/?EIO=4&sid=1.")
    assert has_request_line(b"GET / HTTP/1.1\r\n")
    assert has_request_line(b"G" * MAX_HEAD)


async def test_a_channel_carries_a_connection_and_what_was_read_from_it() -> None:
    parent_end, worker_end = channel_pair()
    received: asyncio.Queue[tuple[bytes, int | None]] = asyncio.Queue()
    closed = asyncio.Event()
    sender = Channel(parent_end, lambda *_: None, closed.set)
    receiver = Channel(worker_end, lambda payload, fd: received.put_nowait((payload, fd)), lambda: None)
    client, server_side = socket.socketpair()
    try:
        big = b"GET /socket.io/?sid=0.x HTTP/1.1\r\n" + b"x" * 250_000  # one whole socket read
        sender.send(big, os.dup(server_side.fileno()))
        sender.send(b"ready")
        payload, fd = await asyncio.wait_for(received.get(), 5)
        assert payload == big
        assert fd is not None
        with socket.socket(fileno=fd) as handed:
            handed.sendall(b"answered by the receiver")
        assert client.recv(100) == b"answered by the receiver"
        assert await asyncio.wait_for(received.get(), 5) == (b"ready", None)
    finally:
        client.close()
        server_side.close()
        receiver.close()
    assert await asyncio.wait_for(closed.wait(), 5) is True, "the sender sees its peer go"
    assert sender.closed


async def test_a_connection_sent_to_a_gone_peer_is_closed_not_leaked() -> None:
    parent_end, worker_end = channel_pair()
    worker_end.close()
    sender = Channel(parent_end, lambda *_: None, lambda: None)
    client, server_side = socket.socketpair()
    with client:
        sender.send(b"GET / HTTP/1.1\r\n", server_side.detach())
        assert sender.closed
        assert client.recv(10) == b"", "the client's connection was closed"


def test_a_refused_connection_gets_a_short_http_answer() -> None:
    client, server_side = socket.socketpair()
    with client:
        answer_and_close(server_side.detach(), "400 Bad Request", "Invalid session")
        response = client.recv(1000)
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in response
    assert response.endswith(b'\r\n\r\n"Invalid session"')
