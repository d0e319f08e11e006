"""A TCP proxy the test controls, between a server process and a backing service (Redis, PostgreSQL).

The fault is real for the processes that connect through it and invisible to everyone else using the
same service.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
RESET_ON_CLOSE = struct.pack("ii", 1, 0)
"""SO_LINGER on with a zero timeout: closing sends a TCP reset instead of a FIN."""


class TcpProxy:
    """Forwards connections to `host:port` until `cut()`: then resets them all and refuses new ones
    until `restore()`. After `lose_next_answer()`, the next bytes the service sends back reset their
    connection instead of being delivered: the request was carried out, its answer never arrives.

    It runs its own event loop in a thread, so it keeps forwarding while the test's loop is
    blocked (starting and stopping server processes is synchronous).
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.down = False
        self.losing_answer = False
        self.writers: set[asyncio.StreamWriter] = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"proxy-{port}", daemon=True)
        self.server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> TcpProxy:
        self.thread.start()
        self.server = self._run(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            reset(writer)
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, up_writer))

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        answering: asyncio.StreamWriter | None = None,
    ) -> None:
        """Copy one direction; `answering` is the service's end when this direction carries answers."""
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                if answering is not None and self.losing_answer:
                    self.losing_answer = False
                    reset(writer)
                    answering.transport.abort()
                    break
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()
        self.writers.discard(writer)

    async def _cut(self) -> None:
        self.down = True
        for writer in list(self.writers):
            reset(writer)
        self.writers.clear()

    async def _restore(self) -> None:
        self.down = False

    def cut(self) -> None:
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._restore())

    def lose_next_answer(self) -> None:
        self.losing_answer = True

    def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def reset(writer: asyncio.StreamWriter) -> None:
    """Drop a connection with a TCP reset, as a crashed or restarted peer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
    writer.transport.abort()
