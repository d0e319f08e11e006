"""A fork server for the tests' uvicorn processes: `python -m uvicorn ARGS` without the imports' cost.

A real server process spends most of its start importing (Litestar, Advanced Alchemy, Socket.IO,
uvicorn): about two seconds of CPU, a few hundred times a run. The fork server is one process per
pytest worker that imports those once and forks a child for each server asked of it. The child
takes the request's environment, working directory and log file (stdout and stderr, unbuffered as
PYTHONUNBUFFERED makes them), then runs uvicorn's command line as `python -m uvicorn` does, with the
settings read from that environment when the factory is called, as in a fresh process (nothing
imported here reads the environment: `PRELOADED_ENVIRONMENT` names the variables read at start-up or
import, and a request that sets them differently gets a real process, `start_forked`). It exits
as that process would: with the command's exit status, by the signal that ended it, at once on
SIGKILL.

The test side sees the child as `ForkedProcess`, with `subprocess.Popen`'s pid, poll, wait,
send_signal, terminate and kill: the fork server reaps the child and sends its exit status over the
connection that asked for it.

    python -m tests.support.forkserver SOCKET_PATH

serves on the Unix socket SOCKET_PATH until its standard input closes (its pytest worker ended),
then kills the children still running.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRELOADED = (
    "uvicorn.main",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvloop",
    "anyio._backends._asyncio",
    "app.asgi",
    "app.core.http.server_protocol",
    "app.core.http.websocket_protocol",
    "tests.support.game",
)
"""What a test server imports before it serves, except the modules named by PARLEY_MODULES (a
module's import may register what only the servers naming it should have)."""

PRELOADED_ENVIRONMENT = ("PROMETHEUS_MULTIPROC_DIR",)
"""Variables read when the interpreter starts (PYTHON*) or a preloaded module is imported
(prometheus_client picks its value store by PROMETHEUS_MULTIPROC_DIR)."""

SERVER_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Request:
    """A `python -m uvicorn` command line to run, with its environment, directory and log file."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    log: str


# The fork server's side.


def serve(path: str) -> Request:
    """Answer requests on `path` until standard input closes; return only in a forked child."""
    for name in PRELOADED:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd: (pid, connection)
    with selectors.DefaultSelector() as selector:
        selector.register(sys.stdin, selectors.EVENT_READ)
        selector.register(listener, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is sys.stdin:
                    if not sys.stdin.buffer.read1(1024):
                        kill_all(children)
                        sys.exit(0)
                elif key.fileobj is listener:
                    connection, _ = listener.accept()
                    request = read_request(connection)
                    pid = os.fork()
                    if pid == 0:
                        selector.close()
                        listener.close()
                        for pidfd, (_, other) in children.items():
                            os.close(pidfd)
                            other.close()
                        connection.close()
                        return request
                    send(connection, {"pid": pid})
                    pidfd = os.pidfd_open(pid)
                    children[pidfd] = (pid, connection)
                    selector.register(pidfd, selectors.EVENT_READ)
                else:
                    pidfd = int(key.fd)
                    selector.unregister(pidfd)
                    pid, connection = children.pop(pidfd)
                    os.close(pidfd)
                    _, status = os.waitpid(pid, 0)
                    send(connection, {"returncode": returncode(status)})
                    connection.close()


def read_request(connection: socket.socket) -> Request:
    with connection.makefile("rb") as lines:
        return Request(**json.loads(lines.readline()))


def send(connection: socket.socket, message: dict[str, int]) -> None:
    with contextlib.suppress(OSError):  # else the test process is gone: nobody waits for this child
        connection.sendall(json.dumps(message).encode() + b"\n")


def returncode(status: int) -> int:
    """`status` as `subprocess.Popen.returncode` reads it: the exit code, or minus the signal."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def kill_all(children: dict[int, tuple[int, socket.socket]]) -> None:
    for pid, _ in children.values():
        os.kill(pid, signal.SIGKILL)
    for pid, _ in children.values():
        os.waitpid(pid, 0)


def become(request: Request) -> None:
    """Make this forked child the process `python -m uvicorn ARGS` would be, up to running uvicorn."""
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    log = os.open(request.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    nothing = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nothing, 0)
    os.close(nothing)
    sys.stdout = unbuffered(1)
    sys.stderr = unbuffered(2)
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    import uvicorn.__main__

    sys.argv = [str(uvicorn.__main__.__file__), *request.args]


def unbuffered(fd: int) -> io.TextIOWrapper:
    """A standard stream as PYTHONUNBUFFERED opens it."""
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", write_through=True)


def main() -> None:
    request = serve(sys.argv[1])
    become(request)
    from uvicorn.main import main as uvicorn_main

    uvicorn_main.main(args=request.args, prog_name="python -m uvicorn")


# The test side.


class ForkedProcess:
    """A server forked by the fork server, with what the tests use of `subprocess.Popen`."""

    def __init__(self, connection: socket.socket, args: list[str]) -> None:
        self.connection = connection
        self.args = args
        self.received = b""
        self.pid: int = self.receive(None)["pid"]
        self.returncode: int | None = None

    def receive(self, timeout: float | None) -> dict[str, Any]:
        """The fork server's next message; TimeoutExpired if none comes within `timeout` seconds."""
        while b"\n" not in self.received:
            readable, _, _ = select.select([self.connection], [], [], timeout)
            if not readable:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            chunk = self.connection.recv(4096)
            if not chunk:
                raise RuntimeError("the fork server closed the connection without an exit status")
            self.received += chunk
        line, _, self.received = self.received.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self.receive(0)["returncode"]
            except subprocess.TimeoutExpired:
                return None
            self.connection.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = int(self.receive(timeout)["returncode"])
            self.connection.close()
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, number)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """This process's fork server, started on first use and ended with this process."""

    def __init__(self) -> None:
        self.path = str(Path(tempfile.mkdtemp(prefix="parley-forkserver-")) / "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, self.path],
            cwd=SERVER_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.environment = dict(os.environ)
        assert self.process.stdout is not None
        if self.process.stdout.readline() != b"ready\n":
            raise RuntimeError(f"the fork server exited with {self.process.wait()}")

    def serves(self, env: dict[str, str]) -> bool:
        """Whether `env` holds the variables read at start-up as the fork server had them."""
        interpreter = {name for name in {*env, *self.environment} if name.startswith("PYTHON")}
        preloaded = [*(interpreter - {"PYTHONUNBUFFERED"}), *PRELOADED_ENVIRONMENT]
        return all(env.get(name) == self.environment.get(name) for name in preloaded)

    def start(self, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> ForkedProcess:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(self.path)
        request = Request(args=command[3:], env=env, cwd=str(cwd), log=str(log))
        connection.sendall(json.dumps(request.__dict__).encode() + b"\n")
        return ForkedProcess(connection, command)


_starting = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server (servers started side by side ask for it at once)."""
    with _starting:
        return started_fork_server()


@functools.cache
def started_fork_server() -> ForkServer:
    return ForkServer()


def start_forked(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> ForkedProcess | None:
    """`command` forked from this process's fork server; None where a child would not run it as a
    process of its own would: `python -m uvicorn` from this interpreter, in the tree the fork server
    imports from, with the variables read at start-up as the fork server had them."""
    if command[:3] != [sys.executable, "-m", "uvicorn"] or cwd != SERVER_ROOT:
        return None
    server = fork_server()
    return server.start(command, env, cwd, log) if server.serves(env) else None


if __name__ == "__main__":
    main()
