"""Parley beside Node socket.io 4.8, same load, same run: `python -m bench [--reps N] [--quick] [--cases …]`.

Each repetition starts a fresh Parley (`parley serve`: uvicorn + uvloop, its real settings, a
temporary SQLite file or `--database-url`) and a fresh Node peer (`node_peer.js`, socket.io installed
from the npm registry into a temporary folder), both pinned to core 0, and runs every case against
one then the other (the order alternates between repetitions) with the C load generator (`cload.c`,
compiled here with gcc) pinned to core 1. Parley runs with BENCH_EVENTS_ENABLED and rate limits set
out of reach; every socket authenticates with a JWT signed with the server's secret (one user, so
the handshake after the first never provisions). Idle memory is measured in the first repetition
only (`--memory-reps`): 10k Parley handshakes take over a minute.

Parley's own `chat:send` has no Node counterpart: it runs against a second Parley, in four shapes
(`CHAT_SHAPES`): on a fresh PostgreSQL database (created on `--postgres-url` and dropped afterwards)
and on a fresh SQLite file, each with `chat_clients` sockets of one participant sending to
`chat_conversations` group conversations, then all of them to one (a hot room): first closed loop
(messages/s), then open loop at half that rate (ack latency p50/p99). Every message is validated,
committed with its seq, acked, and fanned out as `chat:message` to the room. `--cases chat` runs
these cases alone; with `--before`, the earlier Parley runs each shape too, on a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import jwt

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SERVER_CORE, LOAD_CORE = "0", "1"
SOCKET_IO_VERSION = "socket.io@~4.8.1"


@dataclass(frozen=True)
class Profile:
    duration: float
    warmup: float
    echo_clients: tuple[int, ...]
    fanout_members: tuple[int, ...]
    latency_members: int
    latency_rate: int
    idle_steps: tuple[int, ...]
    connect_clients: int
    chat_clients: int = 20
    chat_conversations: int = 10
    deflate_members: int = 1000
    """Idle connections and fan-out members of the cases with a client that asks for compression."""
    storm_clients: int = 100
    """Clients of the reconnect storm: all connect at once."""


FULL = Profile(2, 0.5, (1, 10, 100), (100, 1000), 1000, 5, (1000, 5000, 10000), 300)
QUICK = Profile(1, 0.5, (1, 100), (100,), 100, 5, (500,), 100, deflate_members=100)
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVERS = ("parley", "node", "before")
"""Who is measured: this Parley, the Node peer and, with `--before DIR`, an earlier Parley."""
CASE_GROUPS = ("idle", "connect", "storm", "echo", "fanout", "latency", "deflate", "chat")
"""What `--cases` can name: each group's cases run, in this order, or are left out of the run."""


@dataclass(frozen=True)
class ChatShape:
    """One `chat:send` load: its cases' key prefix, the database it runs on, how many conversations."""

    key: str
    database: str
    hot: bool

    def conversations(self, profile: Profile) -> int:
        return 1 if self.hot else profile.chat_conversations

    def label(self, profile: Profile) -> str:
        where = "PostgreSQL" if self.database == "postgresql" else "SQLite"
        rooms = "one conversation" if self.hot else f"{profile.chat_conversations} conversations"
        return f"chat:send on {where}, {profile.chat_clients} sockets, {rooms}"


CHAT_SHAPES = (
    ChatShape("chat", "postgresql", hot=False),
    ChatShape("chat_hot", "postgresql", hot=True),
    ChatShape("chat_sqlite", "sqlite", hot=False),
    ChatShape("chat_sqlite_hot", "sqlite", hot=True),
)
CHAT_TARGETS = {"chat": 5000, "chat_hot": 3000, "chat_sqlite": 3000, "chat_sqlite_hot": 3000}


@dataclass
class Case:
    """One measured figure: its unit, whether higher is better, and its target: a ratio Parley/Node,
    or with `absolute`, a value of Parley's own."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: float | None = None
    absolute: bool = False
    group: str = ""
    """Its entry of `CASE_GROUPS`: by default the key without its trailing count."""
    samples: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in SERVERS})
    server_cpu: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in SERVERS})
    client_cpu: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in SERVERS})

    def __post_init__(self) -> None:
        self.group = self.group or self.key.rstrip("0123456789")

    def record(self, server: str, value: float, result: dict[str, Any] | None = None) -> None:
        """One sample of `server`, with both CPU shares when the load generator measured them."""
        self.samples[server].append(float(value))
        if result is not None:
            self.server_cpu[server].append(float(result.get("server_cpu_pct") or 0))
            self.client_cpu[server].append(float(result["client_cpu_pct"]))


class Server:
    """A server process pinned to the server core."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path, port: int) -> None:
        self.name, self.port = name, port
        self.log = (cwd / f"{name}-{port}.log").open("w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *argv], env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self) -> None:
        """Both servers listen only once their application has started."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start; see {self.log.name}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_ticks(self) -> int:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def settle(self, quiet_pct: float = 5.0, limit: float = 60.0) -> None:
        """Return once the server has used under `quiet_pct` of a core for half a second."""
        hz = os.sysconf("SC_CLK_TCK")
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self.cpu_ticks()
            time.sleep(0.5)
            if (self.cpu_ticks() - before) / hz / 0.5 * 100 < quiet_pct:
                return

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def build_load_generator(work: Path) -> Path:
    binary = work / "cload"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "cload.c"), "-lz"], check=True)
    return binary


def install_node_peer(work: Path) -> Path:
    prefix = work / "node"
    prefix.mkdir()
    (prefix / "package.json").write_text('{"name": "parley-bench-peer", "private": true}')
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--prefix",
            str(prefix),
            SOCKET_IO_VERSION,
            "bufferutil@^4",
            "utf-8-validate@^6",
        ],
        check=True,
    )
    return prefix / "node_modules"


def parley_env(work: Path, database_url: str | None, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "JWT_", "RATE_"))}
    env.update(
        APP_ENV="local",
        DATABASE_URL=database_url or f"sqlite+aiosqlite:///{work}/parley-bench.db",
        REDIS_URL="",
        JWT_SECRET=secret,
        BENCH_EVENTS_ENABLED="true",
        RATE_LIMIT_DEFAULT="1000000/1",
        RATE_LIMIT_CHAT="1000000/1",
        SOCKET_MAX_PER_USER="100000",
        LOG_LEVEL=os.environ.get("BENCH_PARLEY_LOG_LEVEL", "WARNING"),
    )
    return env


def start_parley(
    work: Path, database_url: str | None, secret: str, name: str = "parley", source: Path | None = None
) -> Server:
    """`parley serve`; with `source`, the `app` package of that checkout instead of this one."""
    port = free_port()
    parley = Path(sys.executable).parent / "parley"
    env = parley_env(work, database_url, secret)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    server = Server(name, [str(parley), "serve", "--port", str(port)], env, work, port)
    server.wait_ready()
    return server


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server of `admin_url`, as Parley's DATABASE_URL; dropped after."""
    name = f"parley_bench_{secrets.token_hex(4)}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(admin_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        server_url = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        yield f"{server_url}/{name}"
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def create_conversations(server: Server, token: str, count: int) -> list[str]:
    """`count` group conversations of the bench user, through the REST API."""
    ids = []
    for index in range(count):
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/api/conversations",
            data=json.dumps({"kind": "group", "participant_ids": [], "title": f"bench {index}"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            ids.append(json.loads(response.read())["data"]["id"])
    return ids


def start_node(work: Path, modules: Path) -> Server:
    port = free_port()
    argv = ["node", str(HERE / "node_peer.js"), str(port), str(modules)]
    server = Server("node", argv, dict(os.environ), work, port)
    server.wait_ready()
    return server


def bench_token(secret: str) -> str:
    """An external-issuer token (no `sid`): Parley verifies it and provisions the user once."""
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "iat": now, "exp": now + 3600, "preferred_username": "bench"}
    return jwt.encode(claims, secret, algorithm="HS256")


class Runner:
    def __init__(self, cload: Path, secret: str, profile: Profile) -> None:
        self.cload, self.secret, self.profile = cload, secret, profile
        self.token = bench_token(secret)

    def argv(self, mode: str, server: Server, **params: Any) -> list[str]:
        params = {"port": server.port, "token": self.token, **params}
        return ["taskset", "-c", LOAD_CORE, str(self.cload), mode, *(f"{k}={v}" for k, v in params.items())]

    def once(self, mode: str, server: Server, **params: Any) -> dict[str, Any]:
        """One run of cload: its JSON line, or RuntimeError with why there is none."""
        done = subprocess.run(
            self.argv(mode, server, **params), capture_output=True, text=True, timeout=300, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {"error": done.stderr.strip()[-300:]}
        if "error" in result:
            raise RuntimeError(f"{server.name} {mode} {params}: {result['error']}")
        return result

    def measure(self, mode: str, server: Server, **params: Any) -> dict[str, Any]:
        timed = {"duration": self.profile.duration, "warmup": self.profile.warmup, "spids": server.pid}
        return self.once(mode, server, **timed, **params)

    def chat(self, server: Server, conversations: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """`chat:send` closed loop, then open loop at half its rate: (throughput, latency) results."""
        chats = ",".join(conversations)
        clients = self.profile.chat_clients
        throughput = self.measure("echo", server, clients=clients, chats=chats)
        server.settle()
        rate = max(1, round(throughput["rps"] / 2))
        latency = self.measure("echo", server, clients=clients, chats=chats, rate=rate)
        if latency["received"] < latency["expected"]:
            raise RuntimeError(f"{server.name} lost acks: {latency}")
        return throughput, latency

    def connect_rate(self, server: Server) -> float:
        return float(self.once("connect", server, clients=self.profile.connect_clients)["conns_per_s"])

    def storm(self, server: Server) -> float:
        """Milliseconds from the first connect until every client of a reconnect storm is ready."""
        return float(self.once("storm", server, clients=self.profile.storm_clients)["all_ready_ms"])

    def idle_memory(self, server: Server, steps: tuple[int, ...], **params: Any) -> dict[int, float]:
        """KiB of server RSS per idle connection at each step (RSS delta / connections)."""
        server.settle()
        base = server.rss_kib()
        per_conn: dict[int, float] = {}
        proc = subprocess.Popen(
            self.argv("idle", server, steps=",".join(str(n) for n in steps), **params),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                step = json.loads(line)
                server.settle()
                per_conn[step["conns"]] = (server.rss_kib() - base) / step["open"]
                if step["open"] < step["conns"]:
                    print(
                        f"{server.name} closed idle connections: {step}\n{server.log_tail()}", file=sys.stderr
                    )
                if step["conns"] == steps[-1]:
                    break
                proc.stdin.write("next\n")
                proc.stdin.flush()
        finally:
            proc.kill()
            proc.wait()
        server.settle()
        return per_conn


def define_cases(profile: Profile) -> dict[str, Case]:
    lat = f"{profile.latency_rate} bcast/s to {profile.latency_members}"
    cases = [
        Case("connect", "connection set-up (sequential)", "conn/s", higher_is_better=True, target=0.7),
        Case(
            "storm",
            f"reconnect storm: {profile.storm_clients} clients at once, until all have session:ready",
            "ms",
            higher_is_better=False,
        ),
        *(
            Case(
                f"echo{n}",
                f"echo with ack, {n} clients",
                "rt/s",
                higher_is_better=True,
                target=0.6 if n == 100 else None,
            )
            for n in profile.echo_clients
        ),
        *(
            Case(
                f"fanout{n}",
                f"fan-out to {n} members",
                "deliv/s",
                higher_is_better=True,
                target={100: 1.3, 1000: 1.5}.get(n),
            )
            for n in profile.fanout_members
        ),
        Case(
            "idle_deflate",
            f"memory per idle conn, {profile.deflate_members}, client asks deflate",
            "KiB",
            higher_is_better=False,
            group="deflate",
        ),
        Case(
            "fanout_deflate",
            f"fan-out to {profile.deflate_members} members, client asks deflate",
            "deliv/s",
            higher_is_better=True,
            group="deflate",
        ),
        Case("lat_p50", f"latency p50, {lat}", "ms", higher_is_better=False, group="latency"),
        Case("lat_p99", f"latency p99, {lat}", "ms", higher_is_better=False, target=0.8, group="latency"),
        *(
            Case(
                f"idle{n}",
                f"memory per idle conn, {n}",
                "KiB",
                higher_is_better=False,
                target=0.8 if n == 10000 else None,
            )
            for n in profile.idle_steps
        ),
    ]
    for shape in CHAT_SHAPES:
        cases += [
            Case(
                f"{shape.key}_send",
                shape.label(profile),
                "msg/s",
                higher_is_better=True,
                target=CHAT_TARGETS[shape.key],
                absolute=True,
                group="chat",
            ),
            Case(
                f"{shape.key}_p50", "  ack p50 at half that rate", "ms", higher_is_better=False, group="chat"
            ),
            Case(
                f"{shape.key}_p99",
                "  ack p99 at half that rate",
                "ms",
                higher_is_better=False,
                target=20,
                absolute=True,
                group="chat",
            ),
        ]
    return {case.key: case for case in cases}


def run_server(
    runner: Runner,
    server: Server,
    cases: dict[str, Case],
    profile: Profile,
    groups: set[str],
) -> None:
    """Run the cases of `groups` (`CASE_GROUPS`) against one server."""
    name = server.name

    def record(key: str, value: float, result: dict[str, Any] | None = None) -> None:
        cases[key].record(name, value, result)

    if "idle" in groups:
        for conns, kib in runner.idle_memory(server, profile.idle_steps).items():
            record(f"idle{conns}", kib)
    if "deflate" in groups:
        members = profile.deflate_members
        record("idle_deflate", runner.idle_memory(server, (members,), deflate=1)[members])
        result = runner.measure("fanout", server, members=members, window=8, deflate=1)
        record("fanout_deflate", result["deliveries_per_s"], result)
        server.settle()
    if "connect" in groups:
        record("connect", runner.connect_rate(server))
        server.settle()
    if "storm" in groups:
        record("storm", runner.storm(server))
        server.settle()
    for n in profile.echo_clients if "echo" in groups else ():
        result = runner.measure("echo", server, clients=n)
        record(f"echo{n}", result["rps"], result)
    for n in profile.fanout_members if "fanout" in groups else ():
        result = runner.measure("fanout", server, members=n, window=8)
        record(f"fanout{n}", result["deliveries_per_s"], result)
        server.settle()
    if "latency" not in groups:
        return
    result = runner.measure("fanout", server, members=profile.latency_members, rate=profile.latency_rate)
    if result["received"] < result["expected"]:
        raise RuntimeError(f"{name} lost deliveries: {result}")
    record("lat_p50", result["lat"]["p50_ms"], result)
    record("lat_p99", result["lat"]["p99_ms"], result)


def run_chat(
    runner: Runner, cases: dict[str, Case], work: Path, postgres_url: str, before: Path | None, rep: int
) -> None:
    """Parley's `chat:send` in every shape of `CHAT_SHAPES` (Node has no counterpart); with `before`, an
    earlier Parley too, on a fresh database of its own, each repetition starting with the next one."""
    builds: list[tuple[str, Path | None]] = [("parley", None)]
    if before is not None:
        builds.append(("before", before))
    builds = builds[rep % len(builds) :] + builds[: rep % len(builds)]
    for shape in CHAT_SHAPES:
        for name, source in builds:
            throughput, latency = chat_shape(runner, shape, work, postgres_url, name, source)
            for suffix, value, result in (
                ("send", throughput["rps"], throughput),
                ("p50", latency["lat"]["p50_ms"], latency),
                ("p99", latency["lat"]["p99_ms"], latency),
            ):
                cases[f"{shape.key}_{suffix}"].record(name, value, result)


def chat_shape(
    runner: Runner, shape: ChatShape, work: Path, postgres_url: str, name: str, source: Path | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One build's `chat:send` in one shape, on a fresh database: (throughput, latency) results."""
    with chat_database(shape, work, postgres_url) as database_url:
        server = start_parley(work, database_url, runner.secret, name=f"{name}-{shape.key}", source=source)
        try:
            conversations = create_conversations(server, runner.token, shape.conversations(runner.profile))
            return runner.chat(server, conversations)
        except RuntimeError:
            print(f"{server.name} log:\n{server.log_tail()}", file=sys.stderr)
            raise
        finally:
            server.stop()


@contextlib.contextmanager
def chat_database(shape: ChatShape, work: Path, postgres_url: str) -> Iterator[str]:
    """A fresh database for one shape: a PostgreSQL database, or a new SQLite file (removed after)."""
    if shape.database == "postgresql":
        with postgres_database(postgres_url) as database_url:
            yield database_url
        return
    path = work / f"{shape.key}-{secrets.token_hex(4)}.db"
    try:
        yield f"sqlite+aiosqlite:///{path}"
    finally:
        for leftover in work.glob(f"{path.name}*"):
            leftover.unlink()


def number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(number(v) for v in (min(values), statistics.median(values), max(values)))


def ratio(case: Case, to: str = "node") -> float | None:
    parley, node = case.samples["parley"], case.samples[to]
    if not parley or not node or statistics.median(node) == 0:
        return None
    return statistics.median(parley) / statistics.median(node)


def verdict(case: Case, value: float | None) -> str:
    if case.absolute and case.samples["parley"]:
        value = statistics.median(case.samples["parley"])
    if case.target is None or value is None:
        return ""
    met = value >= case.target if case.higher_is_better else value <= case.target
    bound = f"{number(case.target)} {case.unit}" if case.absolute else f"{case.target}x"
    return f"{'met' if met else 'MISSED'} ({'>=' if case.higher_is_better else '<='} {bound})"


def cpu(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}%" if values else "-"


def table(cases: dict[str, Case]) -> str:
    rows: list[tuple[str, ...]] = [
        (
            "case",
            "unit",
            "Parley min/med/max",
            "Node min/med/max",
            "Parley/Node",
            "target",
            "CPU srv P/N",
            "CPU load P/N",
        )
    ]
    before = any(case.samples["before"] for case in cases.values())
    if before:
        rows[0] += ("before min/med/max", "Parley/before")
    for case in cases.values():
        value = ratio(case)
        row: tuple[str, ...] = (
            case.label,
            case.unit,
            spread(case.samples["parley"]),
            spread(case.samples["node"]),
            f"{value:.2f}x" if value is not None else "-",
            verdict(case, value),
            f"{cpu(case.server_cpu['parley'])}/{cpu(case.server_cpu['node'])}",
            f"{cpu(case.client_cpu['parley'])}/{cpu(case.client_cpu['node'])}",
        )
        if before:
            gain = ratio(case, to="before")
            row += (spread(case.samples["before"]), f"{gain:.2f}x" if gain is not None else "-")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


@contextlib.contextmanager
def servers(
    work: Path, modules: Path, database_url: str | None, secret: str, before: Path | None
) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        started["parley"] = start_parley(work, database_url, secret)
        started["node"] = start_node(work, modules)
        if before is not None:
            started["before"] = start_parley(work, database_url, secret, name="before", source=before)
        yield started
    finally:
        for server in started.values():
            server.stop()


WAITERS = {"flock", "timeout"}
"""Commands that only wait to run a test suite: `flock -s /tmp/parley-cpu.lock … pytest` waits for the
lock this benchmark holds, and waiting for it in turn would wait forever."""


def pytest_running() -> bool:
    """Whether a test suite runs on this machine: a process of pytest itself (not one waiting to start
    it, nor a browser or nginx a test left behind with pytest's folder in its arguments)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "comm").read_text().strip()
            argv = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        words = [Path(word).name for word in argv.decode(errors="replace").split("\0")]
        if command not in WAITERS and ("pytest" in words or "py.test" in words):
            return True
    return False


def wait_for_quiet_machine(say: Callable[[str], None]) -> None:
    """Other work shares this machine: do not measure while a test suite runs."""
    while pytest_running():
        say("a pytest run is in progress; waiting")
        time.sleep(10)


def compare_with_node(
    runner: Runner, cases: dict[str, Case], work: Path, modules: Path, args: argparse.Namespace, rep: int
) -> None:
    """One repetition of the cases Parley and Node both run; each repetition starts with the next server."""
    with servers(work, modules, args.database_url, runner.secret, args.before) as started:
        names = list(started)
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            print(f"repetition {rep + 1}: {name}", file=sys.stderr, flush=True)
            groups = args.cases if rep < args.memory_reps else args.cases - {"idle"}
            try:
                run_server(runner, started[name], cases, runner.profile, groups)
            except RuntimeError:
                print(f"{name} log:\n{started[name].log_tail()}", file=sys.stderr)
                raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run with small sizes")
    parser.add_argument(
        "--memory-reps",
        type=int,
        default=1,
        help="repetitions that measure idle memory (default 1: 10k handshakes cost Parley over a minute)",
    )
    parser.add_argument("--idle-steps", default=None, help="idle connection counts, e.g. 1000,5000,10000")
    parser.add_argument("--database-url", default=None, help="Parley's DATABASE_URL (default: a temp SQLite)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="a PostgreSQL server where the chat:send case creates (and drops) its database",
    )
    parser.add_argument("--no-chat", action="store_true", help="skip the chat:send cases")
    parser.add_argument(
        "--cases",
        type=case_groups,
        default=set(CASE_GROUPS),
        help=f"the case groups to run, comma-separated, of {','.join(CASE_GROUPS)} (default all)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="a checkout of an earlier Parley (e.g. a git worktree of main) measured in the same run",
    )
    args = parser.parse_args(argv)
    if args.no_chat:
        args.cases.discard("chat")
    profile = QUICK if args.quick else FULL
    if args.idle_steps:
        profile = dataclasses.replace(profile, idle_steps=tuple(int(n) for n in args.idle_steps.split(",")))
    reps = args.reps or (1 if args.quick else 3)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    raise_fd_limit()
    cases = {key: case for key, case in define_cases(profile).items() if case.group in args.cases}
    work = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    try:
        cload = build_load_generator(work)
        secret = secrets.token_hex(32)
        runner = Runner(cload, secret, profile)
        modules = None
        if args.cases - {"chat"}:
            say("installing socket.io from the npm registry")
            modules = install_node_peer(work)
        for rep in range(reps):
            wait_for_quiet_machine(say)
            if modules is not None:
                compare_with_node(runner, cases, work, modules, args, rep)
            if "chat" in args.cases:
                say(f"repetition {rep + 1}/{reps}: parley chat:send")
                run_chat(runner, cases, work, args.postgres_url, args.before, rep)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(cases))
    save(cases, profile, reps)
    return 0


def case_groups(text: str) -> set[str]:
    """`--cases`: a comma-separated list of `CASE_GROUPS`."""
    groups = {group.strip() for group in text.split(",") if group.strip()}
    unknown = groups - set(CASE_GROUPS)
    if unknown or not groups:
        raise argparse.ArgumentTypeError(f"not case groups: {', '.join(sorted(unknown)) or 'none given'}")
    return groups


def save(cases: dict[str, Case], profile: Profile, reps: int) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "when": stamp,
        "reps": reps,
        "profile": profile.__dict__,
        "cpus": {"server": SERVER_CORE, "load": LOAD_CORE},
        "cases": {
            key: {
                "label": case.label,
                "unit": case.unit,
                "higher_is_better": case.higher_is_better,
                "target": case.target,
                "ratio": ratio(case),
                "samples": case.samples,
                "server_cpu_pct": case.server_cpu,
                "client_cpu_pct": case.client_cpu,
            }
            for key, case in cases.items()
        },
    }
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(json.dumps(document, indent=2))
    print(f"\nwritten: {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.exit(main())
