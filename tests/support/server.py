"""Real Parley server processes for end-to-end tests (uvicorn on a free loopback port)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, Self

import httpx

from tests.support.forkserver import ForkedProcess, start_forked

ROOT = Path(__file__).resolve().parents[2]
HTTP_PROTOCOL = "app.core.http.server_protocol:HeadDeadlineProtocol"
"""uvicorn's HTTP protocol as `parley serve` runs it: with a deadline for each request's head."""
WEBSOCKET_PROTOCOL = "app.core.http.websocket_protocol:FrameWritingProtocol"
"""uvicorn's websocket protocol as `parley serve` runs it: writing frames framed once for many."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Exits(Protocol):
    """A process whose end can be polled: a `subprocess.Popen` or a `ForkedProcess`."""

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...


def wait_until_healthy(process: Exits, url: str, log_path: Path, timeout: float) -> None:
    """Return once `url`/health answers 200; fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    # one client for every try: a client made per try loads the CA bundle each time, which costs
    # more CPU than the server's start when several workers wait on servers at once
    with httpx.Client(timeout=0.5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
    raise RuntimeError(f"server did not answer /health within {timeout}s:\n{log_path.read_text()}")


class ServerProcess:
    """One node. `start()` returns when `/health` answers; `stop()` is graceful, `kill()` is SIGKILL.

    uvicorn's access log is off unless `access_log` (its lines need LOG_LEVEL=INFO to be written)."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        factory: str = "app.asgi:create_asgi",
        access_log: bool = False,
    ) -> None:
        self.factory = factory
        self.access_log = access_log
        self.port = free_port()
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | ForkedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.factory,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            HTTP_PROTOCOL,
            "--ws",
            WEBSOCKET_PROTOCOL,
            "--ws-per-message-deflate",
            self.env.get("SOCKET_WS_COMPRESSION") or "false",  # as `parley serve` sets it
            "--ws-ping-interval",
            "0",
            "--access-log" if self.access_log else "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ]

    def start(self, timeout: float = 60.0) -> Self:
        self.process = self.launch(self.command())
        wait_until_healthy(self.process, self.url, self.log_path, timeout)
        return self

    def launch(self, command: list[str]) -> subprocess.Popen[bytes] | ForkedProcess:
        """Forked from the worker's fork server where a child runs `command` as a process of its own
        would (`start_forked`), which spares the imports' cost; else a process of its own."""
        return start_forked(command, self.env, ROOT, self.log_path) or self.popen(command)

    def popen(self, command: list[str]) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def terminate(self) -> None:
        """SIGTERM, without waiting for the process to end (`wait` does)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss(self) -> int:
        """The process's resident set, in bytes."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextlib.contextmanager
def running(servers: list[ServerProcess]) -> Iterator[list[ServerProcess]]:
    """Start `servers` side by side; stop them all afterwards."""
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            list(pool.map(ServerProcess.start, servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


class ParleyServe(ServerProcess):
    """`parley serve ARGS` as it is deployed (migrations first, `--workers N`, NodeServer's drain)."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str, port: int | None = None) -> None:
        super().__init__({**env, "LOG_LEVEL": "INFO"}, log_path)
        self.args = args
        if port is not None:
            self.port = port

    def launch(self, command: list[str]) -> subprocess.Popen[bytes]:
        """A process of its own, as deployed: its imports and start-up are part of what is tested."""
        return self.popen(command)

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "parley"), "serve", "--port", str(self.port), *self.args]
