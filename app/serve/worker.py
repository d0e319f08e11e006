"""One worker of `parley serve --workers N`: serves the connections the supervisor hands it.

Run as `python -m app.serve.worker INDEX CHANNEL_FD` by the supervisor. The worker has no listening
socket: each connection arrives over the channel with the bytes the supervisor read from it, and is
served by uvicorn's own HTTP protocol (`loop.connect_accepted_socket`), websocket upgrades included.

HTTP keep-alive lets a client send a later request on a connection that another session's request
opened: when such a request names a session of another worker, the connection goes back to the
supervisor (with the bytes of that request), which hands it to the owner. So every request of a
session reaches its worker, whatever connection it travels on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from typing import Any

import uvicorn

from app.config.settings import get_settings
from app.core.http.server_protocol import HeadDeadlineProtocol
from app.core.socket.sids import worker_of
from app.serve.handoff import READY, Channel, has_request_line, nonblocking, session_of
from app.serve.node import NodeServer, stop_quietly_after_shutdown

logger = logging.getLogger("parley.serve")


class WorkerServer(NodeServer):
    def __init__(self, index: int, channel_end: socket.socket) -> None:
        settings = get_settings()
        super().__init__(settings, settings.host, settings.port, worker=index)
        self.index = index
        self.node_name = settings.serve.node_name
        self.channel_end = channel_end
        self.channel: Channel | None = None
        self.accepting = True
        self._connecting: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:  # noqa: ARG002
        """The app's start-up, then connections from the channel instead of a listening socket."""
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(uvicorn.config.STARTUP_FAILURE)
        self.servers = []
        self.channel = Channel(self.channel_end, self._handed, self._supervisor_gone)
        self.channel.send(READY)
        self.started = True
        logger.info("worker %d serving (pid %d)", self.index, os.getpid())

    def stop_accepting(self) -> None:
        self.accepting = False

    def _handed(self, head: bytes, fd: int | None) -> None:
        if fd is None:
            return
        if not self.accepting:
            os.close(fd)
            return
        connection = nonblocking(socket.socket(fileno=fd))
        loop = asyncio.get_running_loop()
        serving = loop.create_task(loop.connect_accepted_socket(lambda: self._protocol(head), connection))
        self._connecting.add(serving)
        serving.add_done_callback(self._connecting.discard)

    def _protocol(self, head: bytes) -> RoutedHttpProtocol:
        return RoutedHttpProtocol(
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            head=head,
            worker=self,
        )

    def owns(self, head: bytes) -> bool:
        """Whether the request `head` starts with is this worker's to serve (any without a session is)."""
        sid = session_of(head)
        owner = worker_of(sid, self.node_name) if sid is not None else None
        return owner is None or owner == self.index

    def hand_back(self, head: bytes, fd: int) -> None:
        """Give a connection back to the supervisor, which routes it by `head` (read from it)."""
        if self.channel is None or not self.accepting:
            os.close(fd)
            return
        self.channel.send(head, fd)

    def _supervisor_gone(self) -> None:
        if not self.should_exit:
            logger.warning("worker %d: the supervisor is gone; stopping", self.index)
            self.should_exit = True


class RoutedHttpProtocol(HeadDeadlineProtocol):
    """Parley's HTTP protocol (a deadline on every request head) for a handed-over connection: it
    first serves the bytes the supervisor read, and gives the connection back when a later request
    names another worker's session (the module docstring)."""

    def __init__(self, *args: Any, head: bytes, worker: WorkerServer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head = head
        self.worker = worker

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        head, self.head = self.head, b""
        self.data_received(head)

    def data_received(self, data: bytes) -> None:
        if not self._between_requests():
            super().data_received(data)
            return
        head = self.head + data
        if not has_request_line(head):
            self.head = head  # a request line split over reads: wait for the rest of it
            return
        self.head = b""
        if self.worker.owns(head):
            super().data_received(head)
        else:
            self._hand_back(head)

    def _between_requests(self) -> bool:
        cycle = self.cycle
        return cycle is None or (cycle.response_complete and not cycle.more_body and not self.pipeline)

    def _hand_back(self, head: bytes) -> None:
        self.transport.pause_reading()
        connection = self.transport.get_extra_info("socket")
        self.worker.hand_back(head, os.dup(connection.fileno()))
        self.transport.abort()


def main(argv: list[str]) -> None:
    index, channel_fd = int(argv[1]), int(argv[2])
    server = WorkerServer(index, socket.socket(fileno=channel_fd))
    stop_quietly_after_shutdown()
    server.run()


if __name__ == "__main__":
    main(sys.argv)
