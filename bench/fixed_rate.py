"""`chat:send` at a fixed rate: the server's CPU per message, `python -m bench.fixed_rate [options]`.

Closed-loop throughput on a shared 2-core machine moves by more than most changes make; the share of
its core that the server needs for a given rate moves far less. This runs `chat:send` in open loop at
`--rate` messages/s (the bench's load generator on core 1, 20 sockets of one user sending to 10 group
conversations, or one with `--hot`) against a fresh Parley on core 0 and a fresh database per
repetition (`--database sqlite` or `postgresql` on `--postgres-url`), and prints, per repetition and
as medians: the server's CPU share, the microseconds of CPU per message it makes, the ack p50/p99 and
the messages per batch (`parley_chat_write_batch_size`). With `--before DIR`, an earlier checkout's
`app` runs too, the two taking turns (which goes first alternates), and the ratio of their CPU per
message closes the report. A batch's work is shared by its messages, so the CPU per message falls as
batches grow, which they do when the database takes longer: compare builds whose batches match, and
their latencies too.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import shutil
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from bench.run import (
    DEFAULT_POSTGRES_URL,
    FULL,
    ChatShape,
    Runner,
    Server,
    build_load_generator,
    chat_database,
    create_conversations,
    raise_fd_limit,
    start_parley,
    wait_for_quiet_machine,
)


def one_run(
    runner: Runner, shape: ChatShape, work: Path, args: argparse.Namespace, source: Path | None
) -> dict[str, Any]:
    """One build at the rate, on a fresh database: the load generator's result."""
    with chat_database(shape, work, args.postgres_url) as database_url:
        server = start_parley(
            work, database_url, runner.secret, name="before" if source else "parley", source=source
        )
        try:
            conversations = create_conversations(server, runner.token, shape.conversations(runner.profile))
            result = runner.measure(
                "echo",
                server,
                clients=runner.profile.chat_clients,
                chats=",".join(conversations),
                rate=args.rate,
            )
            return {**result, "batch": mean_batch(server)}
        finally:
            server.stop()


def mean_batch(server: Server) -> float:
    """Messages per batch on average, from the server's metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
        lines = response.read().decode().splitlines()
    figures = dict(line.split(" ", 1) for line in lines if line.startswith("parley_chat_write_batch_size_"))
    count = float(figures.get("parley_chat_write_batch_size_count", 0))
    return float(figures["parley_chat_write_batch_size_sum"]) / count if count else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fixed_rate", description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="where the databases go")
    parser.add_argument("--rate", type=int, default=1000, help="messages/s in all (default 1000)")
    parser.add_argument("--hot", action="store_true", help="every socket sends to one conversation")
    parser.add_argument("--duration", type=float, default=5, help="seconds measured (default 5)")
    parser.add_argument("--reps", type=int, default=4, help="repetitions of each build (default 4)")
    parser.add_argument("--before", type=Path, default=None, help="an earlier checkout, run in turns")
    args = parser.parse_args(argv)
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="parley-fixed-rate-"))
    try:
        profile = dataclasses.replace(FULL, duration=args.duration, warmup=1)
        runner = Runner(build_load_generator(work), secrets.token_hex(32), profile)
        shape = ChatShape("fixed", args.database, hot=args.hot)
        builds: list[tuple[str, Path | None]] = [("parley", None)]
        if args.before is not None:
            builds.append(("before", args.before))
        cpu: dict[str, list[float]] = {name: [] for name, _ in builds}
        print(
            f"{shape.label(profile)}, {args.rate} msg/s: CPU %, us of CPU per message, ack p50/p99 ms, batch"
        )
        for rep in range(args.reps):
            wait_for_quiet_machine(lambda text: print(text, file=sys.stderr, flush=True))
            for name, source in builds[rep % len(builds) :] + builds[: rep % len(builds)]:
                result = one_run(runner, shape, work, args, source)
                share = float(result["server_cpu_pct"])
                cpu[name].append(share)
                latency = result["lat"]
                print(
                    f"  {rep + 1} {name:>6}: {share:5.1f} %  {share * 10_000 / args.rate:6.1f} us"
                    f"  {latency['p50_ms']:.2f} / {latency['p99_ms']:.2f}  {result['batch']:.1f}",
                    flush=True,
                )
        medians = {name: statistics.median(shares) for name, shares in cpu.items()}
        for name, share in medians.items():
            print(f"median {name:>6}: {share:5.1f} %  {share * 10_000 / args.rate:6.1f} us per message")
        if "before" in medians:
            print(f"CPU per message, parley/before: {medians['parley'] / medians['before']:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
