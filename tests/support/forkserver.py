"""A fork server for the tests' uvicorn and `parley` processes: a process without the imports' cost.

A real server process spends most of its start importing (Litestar, Advanced Alchemy, Socket.IO,
uvicorn): about two seconds of CPU, a few hundred times a run; a `parley` command as much. The fork
server is one process per pytest worker that imports those once and forks a child for each command
asked of it. The child takes the request's environment, working directory, standard output and
error files, then runs the command line as `python -m uvicorn` or the `parley` script does, with
the settings read from that environment when they are first asked for, as in a fresh process
(nothing imported here reads them: `PRELOADED_ENVIRONMENT` names the variables read at start-up or
import, and a request that sets them differently gets a real process, `start_forked`). It exits as
that process would: with the command's exit status, by the signal that ended it, at once on SIGKILL.

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
import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn, TextIO

PRELOADED = (
    "uvicorn.main",
    "uvicorn.lifespan.on",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvloop",
    "anyio._backends._asyncio",
    "app.asgi",
    "app.cli",
    "app.db.migrate",
    "app.core.http.server_protocol",
    "app.core.http.websocket_protocol",
    "tests.support.game",
    "jinja2",
)
"""What a test server or command imports before it works (jinja2 as soon as its docs page is asked
for), except the modules named by PARLEY_MODULES (a module's import may register what only the
processes naming it should have)."""

PRELOADED_ENVIRONMENT = ("PROMETHEUS_MULTIPROC_DIR",)
"""Variables read when a preloaded module is imported (prometheus_client picks its value store by
PROMETHEUS_MULTIPROC_DIR), besides the interpreter's PYTHON* ones."""

APPLIED_AT_FORK = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"}
"""The interpreter's start-up variables a forked child applies itself (`become`)."""

SERVER_ROOT = Path(__file__).resolve().parents[2]
PARLEY = str(Path(sys.executable).parent / "parley")
UVICORN = [sys.executable, "-m", "uvicorn"]


@dataclass(frozen=True)
class Request:
    """A command to run, `uvicorn` or `parley` with its arguments, and the process it runs in."""

    program: str
    args: list[str]
    env: dict[str, str]
    cwd: str
    stdout: str
    stderr: str


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
    return Parent(listener, Path(path)).serve()


class Parent:
    """The fork server's loop: the test process's end, requests, and children's ends."""

    def __init__(self, listener: socket.socket, path: Path) -> None:
        self.listener = listener
        self.path = path
        self.test_process = sys.stdin.fileno()  # closed when the test process ends
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.test_process, selectors.EVENT_READ)
        self.selector.register(listener, selectors.EVENT_READ)
        self.children: dict[int, tuple[int, socket.socket]] = {}  # pidfd: (pid, connection)

    def serve(self) -> Request:
        while True:
            for key, _ in self.selector.select():
                if key.fd == self.test_process:
                    if not os.read(self.test_process, 1024):
                        self.end()
                elif key.fileobj is self.listener:
                    connection, _ = self.listener.accept()
                    request = read_request(connection)
                    if self.fork(connection):
                        return request
                else:
                    self.reap(key.fd)

    def fork(self, connection: socket.socket) -> bool:
        """Fork a child for the request on `connection`: True in the child, which keeps nothing of
        the fork server's but what it imported."""
        pid = os.fork()
        if pid == 0:
            self.selector.close()
            self.listener.close()
            for pidfd, (_, other) in self.children.items():
                os.close(pidfd)
                other.close()
            connection.close()
            return True
        send(connection, {"pid": pid})
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = (pid, connection)
        self.selector.register(pidfd, selectors.EVENT_READ)
        return False

    def reap(self, pidfd: int) -> None:
        """Send the exit status of the child that ended (its pidfd readable) to who asked for it."""
        self.selector.unregister(pidfd)
        pid, connection = self.children.pop(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        send(connection, {"returncode": returncode(status)})
        connection.close()

    def end(self) -> NoReturn:
        """Kill the children still running, remove the socket and its directory, exit."""
        for pid, _ in self.children.values():
            os.kill(pid, signal.SIGKILL)
        for pid, _ in self.children.values():
            os.waitpid(pid, 0)
        self.path.unlink()
        self.path.parent.rmdir()
        sys.exit(0)


def read_request(connection: socket.socket) -> Request:
    with connection.makefile("rb") as lines:
        return Request(**json.loads(lines.readline()))


def send(connection: socket.socket, message: dict[str, int]) -> None:
    with contextlib.suppress(OSError):  # else the test process is gone: nobody waits for this child
        connection.sendall(json.dumps(message).encode() + b"\n")


def returncode(status: int) -> int:
    """`status` as `subprocess.Popen.returncode` reads it: the exit code, or minus the signal."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def become(request: Request) -> None:
    """Make this forked child the process the request's command line starts, up to running it."""
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    redirect(os.devnull, 0, os.O_RDONLY)
    redirect(request.stdout, 1, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    redirect(request.stderr, 2, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.chdir(request.cwd)
    sys.path[:] = search_path(request)
    os.environ.clear()
    os.environ.update(request.env)
    unbuffered = bool(request.env.get("PYTHONUNBUFFERED"))
    sys.stdout = standard_stream(1, sys.stdout, unbuffered)
    sys.stderr = standard_stream(2, sys.stderr, unbuffered)
    sys.dont_write_bytecode = bool(request.env.get("PYTHONDONTWRITEBYTECODE"))
    if request.program == "parley":
        sys.argv = [PARLEY, *request.args]
        script = types.ModuleType("__main__")
        script.__file__ = PARLEY
        sys.modules["__main__"] = script
    else:
        import uvicorn.__main__

        sys.argv = [str(uvicorn.__main__.__file__), *request.args]
        sys.modules["__main__"] = uvicorn.__main__


def search_path(request: Request) -> list[str]:
    """`sys.path` as the interpreter would build it for the request: the script's directory (the
    working directory under `-m`), PYTHONPATH's entries, then those of the installation."""
    first = str(Path(PARLEY).parent) if request.program == "parley" else request.cwd
    installation = sys.path[1 + len(python_path(os.environ)) :]
    return [first, *python_path(request.env), *installation]


def python_path(env: Mapping[str, str]) -> list[str]:
    return [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]


def redirect(path: str, fd: int, flags: int) -> None:
    opened = os.open(path, flags, 0o644)
    os.dup2(opened, fd)
    os.close(opened)


def standard_stream(fd: int, like: TextIO, unbuffered: bool) -> io.TextIOWrapper:
    """Standard output or error on a file, encoded and buffered as the interpreter opens them."""
    raw = io.FileIO(fd, "w", closefd=False)
    if unbuffered:
        return io.TextIOWrapper(raw, like.encoding, like.errors, write_through=True)
    return io.TextIOWrapper(io.BufferedWriter(raw), like.encoding, like.errors, line_buffering=fd == 2)


def main() -> None:
    request = serve(sys.argv[1])
    become(request)
    if request.program == "parley":
        from app.cli import main as parley

        sys.exit(parley())
    from uvicorn.main import main as uvicorn_command

    uvicorn_command.main(args=request.args, prog_name="python -m uvicorn")


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
        preloaded = [*(interpreter - APPLIED_AT_FORK), *PRELOADED_ENVIRONMENT]
        return all(env.get(name) == self.environment.get(name) for name in preloaded)

    def start(self, command: list[str], request: Request) -> ForkedProcess:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(self.path)
        connection.sendall(json.dumps(asdict(request)).encode() + b"\n")
        return ForkedProcess(connection, command)


_starting = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server (servers started side by side ask for it at once)."""
    with _starting:
        return started_fork_server()


@functools.cache
def started_fork_server() -> ForkServer:
    return ForkServer()


def start_forked(
    command: list[str], env: dict[str, str], cwd: Path, stdout: Path, stderr: Path | None = None
) -> ForkedProcess | None:
    """`command` forked from this process's fork server, its output appended to `stdout` and
    `stderr` (`stdout` too if None); None where a child would not run it as a process of its own
    would: `python -m uvicorn` from this interpreter in the tree the fork server imports from, or
    `parley`, with the variables read at start-up as the fork server had them."""
    if command[:3] == UVICORN and cwd == SERVER_ROOT:
        program, args = "uvicorn", command[3:]
    elif command[0] == PARLEY:
        program, args = "parley", command[1:]
    else:
        return None
    server = fork_server()
    if not server.serves(env):
        return None
    request = Request(program, args, env, str(cwd), str(stdout), str(stderr or stdout))
    return server.start(command, request)


def run_forked(
    command: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(command, capture_output=True, text=True)`, forked where `start_forked` can."""
    with tempfile.TemporaryDirectory(prefix="parley-run-") as captured:
        stdout, stderr = Path(captured) / "stdout", Path(captured) / "stderr"
        process = start_forked(command, env, cwd, stdout, stderr)
        if process is None:
            return subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
        return subprocess.CompletedProcess(command, returncode, read(stdout), read(stderr))


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


if __name__ == "__main__":
    main()
