"""`parley serve --workers N`: the parent process, owner of the listening socket and of the workers.

For each new connection it reads the first request line and hands the connection, with what it read,
to the worker that owns the Engine.IO session the request names (every sid starts with its worker's
index: `app.core.socket.sids`), or, for a request without a session, to the next ready worker in
turn. A request naming a session that no worker holds (its worker restarted since, or there is no
such worker) is answered 400 here. Workers give back keep-alive connections whose next request
belongs to another worker (`app.serve.worker`); those are routed the same way.

A worker that dies is restarted, after a pause that grows while it keeps dying young. SIGTERM or
Ctrl-C stops accepting; each worker then drains (`app.serve.node.NodeServer`), and the parent exits
0 once all have stopped. The workers write prometheus-client's multiprocess files into a directory
of this run, so one scrape of `/metrics` on any worker covers them all; the live gauges of a worker
that died are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import multiprocess

from app.config.settings import Settings
from app.core.socket.sids import worker_of
from app.serve.handoff import (
    MAX_HEAD,
    READY,
    Channel,
    answer_and_close,
    channel_pair,
    has_request_line,
    nonblocking,
    session_of,
)
from app.serve.node import CONNECTIONS_CLOSE_WITHIN

logger = logging.getLogger("parley.serve")

BACKLOG = 2048
HEAD_TIMEOUT = 10.0
"""Seconds a new connection has to send its first request line."""
YOUNG = 10.0
"""A worker that dies sooner than this after its start is restarted after a growing pause."""
RESTART_PAUSE_MAX = 10.0
STOP_MARGIN = 10.0
"""Seconds past a worker's own stop budget before it is killed."""
STARTUP_FAILURE = 3


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    channel: Channel | None = None
    ready: bool = False
    started_at: float = 0.0
    young_deaths: int = 0


class Supervisor:
    def __init__(self, settings: Settings, count: int, listener: socket.socket, metrics_dir: str) -> None:
        self.settings = settings
        self.listener = listener
        self.workers = [Worker(index) for index in range(count)]
        self.env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
        self.metrics_dir = metrics_dir
        self.counts: Counter[str] = Counter()
        self.starting = True
        self.stopping = False
        self._turn = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed = asyncio.Event()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        for worker in self.workers:
            await self._start(worker)
        started = await self._first(self._all_ready(), stop.wait())
        self.starting = False
        if started:
            accepting = self._spawn(self._accept())
            host, port = self.listener.getsockname()[:2]
            logger.info("parley serving on http://%s:%d with %d workers", host, port, len(self.workers))
            await stop.wait()
            accepting.cancel()
        await self._stop()
        return 0 if started or stop.is_set() else STARTUP_FAILURE

    @staticmethod
    async def _first(wanted: Coroutine[Any, Any, bool], stop: Coroutine[Any, Any, Any]) -> bool:
        """What `wanted` returns, or False if `stop` finishes first."""
        tasks = [asyncio.ensure_future(wanted), asyncio.ensure_future(stop)]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return tasks[0] in done and bool(tasks[0].result())

    async def _all_ready(self) -> bool:
        """True once every worker is ready; False as soon as one exits while starting."""
        while not all(worker.ready for worker in self.workers):
            if any(
                worker.process is not None and worker.process.returncode is not None
                for worker in self.workers
            ):
                return False
            await self._changed.wait()
            self._changed.clear()
        return True

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start(self, worker: Worker) -> None:
        parent_end, child_end = channel_pair()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.serve.worker",
                str(worker.index),
                str(child_end.fileno()),
                pass_fds=(child_end.fileno(),),
                env=self.env,
            )
        finally:
            child_end.close()
        worker.process = process
        worker.ready = False
        worker.started_at = asyncio.get_running_loop().time()
        worker.channel = Channel(
            parent_end,
            lambda payload, fd: self._from_worker(worker, payload, fd),
            lambda: self._lost(worker),
        )
        logger.info("worker %d started (pid %d)", worker.index, process.pid)
        self._spawn(self._watch(worker, process))

    def _from_worker(self, worker: Worker, payload: bytes, fd: int | None) -> None:
        if fd is None:
            if payload == READY:
                worker.ready = True
                self._changed.set()
            return
        self.counts["handed back"] += 1
        self._route(payload, fd)

    def _lost(self, worker: Worker) -> None:
        worker.ready = False
        self._changed.set()

    async def _watch(self, worker: Worker, process: asyncio.subprocess.Process) -> None:
        status = await process.wait()
        if worker.channel is not None:
            worker.channel.close()
        multiprocess.mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        self._changed.set()
        if self.stopping:
            return
        if self.starting:
            logger.error(
                "worker %d (pid %d) exited with status %d while starting", worker.index, process.pid, status
            )
            return
        young = asyncio.get_running_loop().time() - worker.started_at < YOUNG
        worker.young_deaths = worker.young_deaths + 1 if young else 0
        pause = min(RESTART_PAUSE_MAX, 0.5 * 2 ** (worker.young_deaths - 1)) if young else 0.0
        logger.warning(
            "worker %d (pid %d) exited with status %d; restarting it in %.1f s",
            worker.index,
            process.pid,
            status,
            pause,
        )
        await asyncio.sleep(pause)
        if not self.stopping:
            await self._start(worker)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            connection, _ = await loop.sock_accept(self.listener)
            self._spawn(self._route_new(connection))

    async def _route_new(self, connection: socket.socket) -> None:
        try:
            head = await asyncio.wait_for(_read_head(nonblocking(connection)), HEAD_TIMEOUT)
        except (TimeoutError, OSError):
            head = b""
        if not head:
            connection.close()
            return
        self._route(head, connection.detach())

    def _route(self, head: bytes, fd: int) -> None:
        """Hand connection `fd`, which sent `head`, to its worker, or answer it here."""
        if self.stopping:
            os.close(fd)
            return
        sid = session_of(head)
        worker = self._next_ready() if sid is None else self._owner(sid)
        if worker is None or worker.channel is None:
            self.counts["refused"] += 1
            if sid is None:
                answer_and_close(fd, "503 Service Unavailable", "No worker is ready; try again")
            else:
                answer_and_close(fd, "400 Bad Request", "Invalid session")
            return
        self.counts["routed"] += 1
        worker.channel.send(head, fd)

    def _owner(self, sid: str) -> Worker | None:
        index = worker_of(sid, self.settings.serve.node_name)
        if index is None or index >= len(self.workers) or not self.workers[index].ready:
            return None
        return self.workers[index]

    def _next_ready(self) -> Worker | None:
        for _ in range(len(self.workers)):
            worker = self.workers[self._turn]
            self._turn = (self._turn + 1) % len(self.workers)
            if worker.ready:
                return worker
        return None

    async def _stop(self) -> None:
        """Stop accepting, let every worker drain, kill those that outlive their budget."""
        self.stopping = True
        self.listener.close()
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGTERM)
        budget = self.settings.serve.shutdown_grace + CONNECTIONS_CLOSE_WITHIN + STOP_MARGIN
        alive = [worker.process for worker in self.workers if worker.process is not None]
        waits = [asyncio.ensure_future(process.wait()) for process in alive]
        if waits:
            await asyncio.wait(waits, timeout=budget)
        for process in alive:
            if process.returncode is None:
                logger.error("worker pid %d did not stop within %.0f s; killing it", process.pid, budget)
                process.kill()
                await process.wait()
        for task in list(self._tasks):
            task.cancel()
        logger.info(
            "router stopped: %d connections routed, %d handed back by workers, %d refused",
            self.counts["routed"],
            self.counts["handed back"],
            self.counts["refused"],
        )


def _exited(worker: Worker) -> bool:
    return worker.process is not None and worker.process.returncode is not None


async def _read_head(connection: socket.socket) -> bytes:
    """What the client sent until its first request line is complete (b"" if it closed before)."""
    loop = asyncio.get_running_loop()
    head = b""
    while not has_request_line(head):
        chunk = await loop.sock_recv(connection, MAX_HEAD)
        if not chunk:
            return b""
        head += chunk
    return head


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(BACKLOG)
    except OSError:
        listener.close()
        raise
    return nonblocking(listener)


def supervise(settings: Settings, host: str, port: int, count: int) -> int:
    """Run the router and `count` workers until SIGTERM or Ctrl-C; the process's exit status."""
    try:
        listener = listen(host, port)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)  # noqa: TRY400 - one line
        return STARTUP_FAILURE
    with tempfile.TemporaryDirectory(prefix="parley-metrics-") as metrics_dir:

        async def run() -> int:
            return await Supervisor(settings, count, listener, metrics_dir).run()

        return _run_loop(run())


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return int(uvloop.run(main))
