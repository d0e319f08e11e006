"""How a connection travels between processes: its socket and the bytes already read from it.

The supervisor and each worker share a Unix `SOCK_SEQPACKET` pair. A message carries one file
descriptor (the client's TCP connection) and, as its payload, the bytes read from that connection so
far; the receiver serves the connection as if it had read them itself. A message without a
descriptor is a control word (`READY`). The payload of a message is at most one read of a socket
(256 KiB in uvloop and asyncio), so the buffers are sized for that.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import urllib.parse
from collections import deque
from collections.abc import Callable

logger = logging.getLogger("parley.serve")

READY = b"ready"
"""A worker's first message: its app has started and it serves what it is handed."""
MAX_HEAD = 8192
"""Bytes that must hold a request line; a request line longer than that is nobody's session."""
RECEIVE_MAX = 1 << 19
BUFFER_BYTES = 1 << 20
MESSAGES_PER_WAKEUP = 64
SOCKET_IO_PATH = "/socket.io"

OnMessage = Callable[[bytes, int | None], None]


def channel_pair() -> tuple[socket.socket, socket.socket]:
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for end in ends:
        end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER_BYTES)
        end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER_BYTES)
    return ends


def has_request_line(head: bytes) -> bool:
    return b"\n" in head or len(head) >= MAX_HEAD


def session_of(head: bytes) -> str | None:
    """The Engine.IO `sid` named by the request that `head` starts with, if it names one."""
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return None
    target = urllib.parse.urlsplit(parts[1].decode("latin-1"))
    if not target.path.startswith(SOCKET_IO_PATH):
        return None
    sids = urllib.parse.parse_qs(target.query).get("sid")
    return sids[0] if sids else None


class Channel:
    """One end of a process pair on an event loop.

    `send` queues while the peer is slow and owns the descriptor it is given: it is closed once sent,
    or when the channel closes. Messages received go to `on_message(payload, fd)`, which then owns
    the descriptor; `on_closed` runs once when the peer is gone.
    """

    def __init__(self, end: socket.socket, on_message: OnMessage, on_closed: Callable[[], None]) -> None:
        self.end = nonblocking(end)
        self.on_message = on_message
        self.on_closed = on_closed
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._pending: deque[tuple[bytes, int | None]] = deque()
        self._writing = False
        self._loop.add_reader(end, self._readable)

    def send(self, payload: bytes, fd: int | None = None) -> None:
        if self.closed:
            _close_fd(fd)
            return
        self._pending.append((payload, fd))
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        while self._pending:
            payload, fd = self._pending[0]
            try:
                if fd is None:
                    self.end.send(payload)
                else:
                    socket.send_fds(self.end, [payload], [fd])
            except BlockingIOError:
                if not self._writing:
                    self._writing = True
                    self._loop.add_writer(self.end, self._flush)
                return
            except OSError:
                self.close()
                return
            self._pending.popleft()
            _close_fd(fd)
        if self._writing:
            self._writing = False
            self._loop.remove_writer(self.end)

    def _readable(self) -> None:
        for _ in range(MESSAGES_PER_WAKEUP):
            try:
                payload, fds, flags, _ = socket.recv_fds(self.end, RECEIVE_MAX, 1)
            except BlockingIOError:
                return
            except OSError:
                self.close()
                return
            if not payload and not fds:
                self.close()
                return
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                logger.warning("dropped a truncated message between processes (%d bytes)", len(payload))
                for fd in fds:
                    os.close(fd)
                continue
            self.on_message(payload, fds[0] if fds else None)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self.end)
        if self._writing:
            self._loop.remove_writer(self.end)
        while self._pending:
            _close_fd(self._pending.popleft()[1])
        self.end.close()
        self.on_closed()


def nonblocking(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)  # noqa: FBT003 - the socket API's own flag
    return sock


def _close_fd(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def answer_and_close(fd: int, status: str, body: str) -> None:
    """Answer a connection nobody will serve with a short HTTP response, then close it."""
    encoded = f'"{body}"'.encode()
    response = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(encoded)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + encoded
    with nonblocking(socket.socket(fileno=fd)) as connection:
        try:
            connection.send(response)
            connection.shutdown(socket.SHUT_WR)
        except OSError:
            logger.debug("a refused connection was gone before its answer")
