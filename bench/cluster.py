"""Fan-out across nodes, before and after per-room channels: `python -m bench.cluster --before DIR`.

`DIR` holds the code to compare with (e.g. `git archive main | tar -x -C DIR`); the "after" side is
this tree. Each repetition, for each side in turn (the order alternates), starts a private
`redis-server` on a free port and N Parley processes (`parley serve`, one shared SQLite file,
BENCH_EVENTS_ENABLED) on it, all pinned to core 0, with the C load generator (`cload.c`) on core 1:
100 members of one room on node 1 and one sender on node 2 (node 1 when N = 1).

- `closed`: the sender keeps 8 broadcasts in flight (cload's fanout mode) with 1, 2 and 4 nodes:
  deliveries per second, the CPU of each node and of Redis, Redis' output bytes, and the CPU spent
  per delivered message by each node, over cload's measured window.
- `steady`: 4 nodes, the sender at a steady `--rate` broadcasts per second: the CPU of nodes 3 and 4
  (no member, no sender) against that of node 1 (the members').

Every figure is min/median/max over the repetitions, the two sides side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.run import (
    LOAD_CORE,
    SERVER_CORE,
    Server,
    bench_token,
    build_load_generator,
    free_port,
    parley_env,
    raise_fd_limit,
)

HERE = Path(__file__).resolve().parent
AFTER = HERE.parent
MEMBERS = 100
NODE_COUNTS = (1, 2, 4)
HZ = os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """What one measured window cost: CPU seconds per node and of Redis, Redis output bytes."""

    seconds: float
    deliveries: float
    node_cpu: list[float]
    redis_cpu: float
    redis_out: int


def ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class PrivateRedis:
    def __init__(self, work: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(work)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while "PONG" not in self.cli("ping"):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def cli(self, *args: str) -> str:
        command = ["redis-cli", "-p", str(self.port), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return done.stdout

    def output_bytes(self) -> int:
        for line in self.cli("info", "stats").splitlines():
            if line.startswith("total_net_output_bytes:"):
                return int(line.split(":")[1])
        raise RuntimeError("no total_net_output_bytes")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@contextlib.contextmanager
def cluster_of(
    side: Path, count: int, work: Path, secret: str
) -> Iterator[tuple[PrivateRedis, list[Server]]]:
    work.mkdir(parents=True)
    redis = PrivateRedis(work)
    env = parley_env(work, f"sqlite+aiosqlite:///{work}/cluster-{count}.db", secret)
    env.update(REDIS_URL=f"redis://127.0.0.1:{redis.port}/0", PYTHONPATH=str(side))
    parley = str(Path(sys.executable).parent / "parley")
    nodes: list[Server] = []
    try:
        for index in range(count):  # one after the other: the first applies the migrations
            port = free_port()
            node = Server(f"node{index + 1}", [parley, "serve", "--port", str(port)], env, work, port)
            nodes.append(node)
            node.wait_ready()
        yield redis, nodes
    finally:
        for node in nodes:
            node.stop()
        redis.stop()


Meters = tuple[float, list[int], int, int]


def read_meters(redis: PrivateRedis, nodes: list[Server]) -> Meters:
    """Now, each node's CPU ticks, Redis' CPU ticks and its output bytes so far."""
    return time.monotonic(), [ticks(n.pid) for n in nodes], ticks(redis.proc.pid), redis.output_bytes()


def measure(cload: Path, token: str, redis: PrivateRedis, nodes: list[Server], **params: object) -> Window:
    """Run cload's fanout mode; meter the nodes and Redis over the window it measures."""
    sender = nodes[1] if len(nodes) > 1 else nodes[0]
    argv = ["taskset", "-c", LOAD_CORE, str(cload), "fanout", f"port={nodes[0].port}", f"token={token}",
            f"sender_port={sender.port}", f"members={MEMBERS}", "marks=1"]  # fmt: skip
    argv += [f"{key}={value}" for key, value in params.items()]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    start: tuple[float, list[int], int, int] | None = None
    result: dict[str, float] = {}
    for line in proc.stdout:
        if line.startswith('{"mark"'):
            start = (
                time.monotonic(),
                [ticks(n.pid) for n in nodes],
                ticks(redis.proc.pid),
                redis.output_bytes(),
            )
        elif line.startswith("{"):
            end = (
                time.monotonic(),
                [ticks(n.pid) for n in nodes],
                ticks(redis.proc.pid),
                redis.output_bytes(),
            )
            result = json.loads(line)
    proc.wait()
    if start is None or "error" in result or not result:
        raise RuntimeError(f"cload fanout {params}: {result}")
    seconds = end[0] - start[0]
    received = result.get("deliveries_per_s") or result.get("received", 0) / seconds
    return Window(
        seconds,
        float(received) * seconds,
        [(b - a) / HZ for a, b in zip(start[1], end[1], strict=True)],
        (end[2] - start[2]) / HZ,
        end[3] - start[3],
    )


def spread(values: list[float], digits: int) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{low:.{digits}f} / {middle:.{digits}f} / {high:.{digits}f}"


Figure = Callable[[Window], float]


def row(label: str, figure: Figure, runs: dict[str, list[Window]], digits: int = 1) -> str:
    """One line of the table: the figure on each side (min / median / max) and the medians' ratio."""
    before, after = ([figure(window) for window in runs[side]] for side in ("before", "after"))
    base = statistics.median(before)
    ratio = f"{statistics.median(after) / base:.2f}" if base else "-"
    return f"| {label} | {spread(before, digits)} | {spread(after, digits)} | {ratio} |"


def node_cpu_per_delivery(index: int) -> Figure:
    return lambda w: 1e6 * w.node_cpu[index] / w.deliveries


def node_cpu_pct(index: int) -> Figure:
    return lambda w: 100 * w.node_cpu[index] / w.seconds


def bystander_share(index: int) -> Figure:
    return lambda w: 100 * w.node_cpu[index] / w.node_cpu[0]


def report(closed: dict[str, dict[int, list[Window]]], steady: dict[str, list[Window]], rate: int) -> str:
    lines = ["| figure (min / median / max) | before | after | after/before |", "|---|---|---|---|"]
    for count in NODE_COUNTS:
        runs = {side: closed[side][count] for side in closed}
        name = f"{count} node{'s' if count > 1 else ''}"
        lines.append(row(f"{name}: deliveries/s", lambda w: w.deliveries / w.seconds, runs, 0))
        lines.append(row(f"{name}: Redis CPU %", lambda w: 100 * w.redis_cpu / w.seconds, runs))
        per_broadcast: Figure = lambda w: w.redis_out / 1024 / (w.deliveries / MEMBERS)  # noqa: E731
        lines.append(row(f"{name}: Redis output KiB per broadcast", per_broadcast, runs, 2))
        lines.extend(
            row(f"{name}: node {index + 1} CPU µs per delivery", node_cpu_per_delivery(index), runs, 2)
            for index in range(count)
        )
        every_node: Figure = lambda w: 1e6 * sum(w.node_cpu) / w.deliveries  # noqa: E731
        lines.append(row(f"{name}: all nodes CPU µs per delivery", every_node, runs, 2))
    steady_name = f"4 nodes, {rate} broadcasts/s"
    lines.extend(row(f"{steady_name}: node {i + 1} CPU %", node_cpu_pct(i), steady) for i in (0, 1, 2, 3))
    lines.extend(
        row(f"{steady_name}: node {i + 1} CPU as % of node 1's", bystander_share(i), steady, 2)
        for i in (2, 3)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the tree to compare with")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=100, help="steady broadcasts per second (4 nodes)")
    args = parser.parse_args(argv)
    raise_fd_limit()
    sides = {"before": args.before.resolve(), "after": AFTER}
    closed: dict[str, dict[int, list[Window]]] = {side: {n: [] for n in NODE_COUNTS} for side in sides}
    steady: dict[str, list[Window]] = {side: [] for side in sides}
    timing = {"duration": args.duration, "warmup": 0.5}
    with tempfile.TemporaryDirectory(prefix="parley-cluster-bench-") as folder:
        work = Path(folder)
        cload = build_load_generator(work)
        secret = os.urandom(24).hex()
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for side in order:
                token = bench_token(secret)
                for count in NODE_COUNTS:
                    with cluster_of(sides[side], count, work / f"{side}-{rep}-{count}", secret) as (
                        redis,
                        nodes,
                    ):
                        closed[side][count].append(measure(cload, token, redis, nodes, window=8, **timing))
                        if count == NODE_COUNTS[-1]:
                            nodes[0].settle()
                            steady[side].append(measure(cload, token, redis, nodes, rate=args.rate, **timing))
                print(f"rep {rep + 1} {side} done", file=sys.stderr, flush=True)
    print(report(closed, steady, args.rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
