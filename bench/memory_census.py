"""Where an idle connection's memory goes: `python -m bench.memory_census [--conns N] [--deflate]`.

Starts `parley serve` as the benchmark does (uvicorn, uvloop, a temporary SQLite file, pinned to the
server core), but under `python -X tracemalloc` and with a handler for SIGUSR1 that writes a
tracemalloc snapshot and a census of the objects the collector tracks, by type. It takes one such
census with the server settled, opens `--conns` idle authenticated websocket connections with the C
load generator (`cload idle`, as the `idle` case does), lets the server settle again, and takes a
second. It prints, per connection: the RSS delta, the traced Python allocations, the allocation
sites that grew most (file and line, or a few frames with `--frames`), and the object types that
grew most (count, and shallow bytes from `sys.getsizeof`).

tracemalloc costs memory and time of its own, so the RSS it prints is higher than the `idle` case's;
its allocation sites are what it is for. The handler exists only in the process this script starts.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import pickle
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

from bench.run import (
    FULL,
    HERE,
    Runner,
    Server,
    build_load_generator,
    free_port,
    parley_env,
    raise_fd_limit,
)

CENSUS_DIR = "BENCH_CENSUS_DIR"
"""Where the served process writes its censuses (set only by this script)."""


def serve(port: int) -> None:
    """The server side: `parley serve`, writing a census to `$BENCH_CENSUS_DIR` on each SIGUSR1."""
    folder = Path(os.environ[CENSUS_DIR])
    taken = 0

    def census(_signum: int, _frame: FrameType | None) -> None:
        nonlocal taken
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        counts: collections.Counter[str] = collections.Counter()
        sizes: collections.Counter[str] = collections.Counter()
        for obj in gc.get_objects():
            kind = type(obj)
            name = f"{kind.__module__}.{kind.__qualname__}"
            counts[name] += 1
            sizes[name] += sys.getsizeof(obj)
        partial = folder / f"census-{taken}.partial"
        with partial.open("wb") as out:
            pickle.dump({"snapshot": snapshot, "counts": counts, "sizes": sizes}, out)
        partial.rename(folder / f"census-{taken}.pickle")
        taken += 1

    signal.signal(signal.SIGUSR1, census)
    from app.cli import main

    main(["serve", "--port", str(port)])


def take_census(server: Server, folder: Path, index: int) -> dict[str, Any]:
    server.settle()
    os.kill(server.pid, signal.SIGUSR1)
    path = folder / f"census-{index}.pickle"
    deadline = time.monotonic() + 300
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no census from the server; see {server.log.name}")
        time.sleep(0.2)
    with path.open("rb") as source:
        loaded: dict[str, Any] = pickle.load(source)  # written by the process started here
    return loaded


def report(
    before: dict[str, Any], after: dict[str, Any], conns: int, rss_kib: float, top: int, frames: int
) -> None:
    old: tracemalloc.Snapshot = before["snapshot"]
    new: tracemalloc.Snapshot = after["snapshot"]
    traced = sum(stat.size for stat in new.statistics("filename")) - sum(
        stat.size for stat in old.statistics("filename")
    )
    print(f"{conns} idle connections: RSS {rss_kib / conns:.1f} KiB per connection (under tracemalloc)")
    print(f"traced Python allocations: {traced / conns / 1024:.2f} KiB per connection\n")
    key = "traceback" if frames > 1 else "lineno"
    diffs = sorted(new.compare_to(old, key), key=lambda stat: stat.size_diff, reverse=True)[:top]
    print(f"{'bytes/conn':>10} {'blocks/conn':>11}  allocation site")
    for stat in diffs:
        where = stat.traceback.format(limit=frames, most_recent_first=True)
        print(f"{stat.size_diff / conns:10.0f} {stat.count_diff / conns:11.2f}  {where[0].strip()}")
        for line in where[1:]:
            print(f"{'':23}{line.strip()}")
    print(f"\n{'objects/conn':>12} {'bytes/conn':>10}  type (objects the collector tracks; shallow size)")
    grown = sorted(
        after["sizes"], key=lambda name: after["sizes"][name] - before["sizes"].get(name, 0), reverse=True
    )[:top]
    for name in grown:
        count = (after["counts"][name] - before["counts"].get(name, 0)) / conns
        size = (after["sizes"][name] - before["sizes"].get(name, 0)) / conns
        print(f"{count:12.2f} {size:10.0f}  {name}")


def census_run(conns: int, deflate: bool, top: int, frames: int) -> None:
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="parley-census-"))
    try:
        secret = secrets.token_hex(32)
        runner = Runner(build_load_generator(work), secret, FULL)
        env = parley_env(work, None, secret)
        env.update({CENSUS_DIR: str(work), "PYTHONPATH": str(HERE.parent)})
        port = free_port()
        tracing = f"tracemalloc={frames}"
        argv = [sys.executable, "-X", tracing, "-m", "bench.memory_census", "--serve", str(port)]
        server = Server("parley", argv, env, work, port)
        try:
            server.wait_ready()
            before = take_census(server, work, 0)
            base = server.rss_kib()
            params = {"steps": conns, **({"deflate": 1} if deflate else {})}
            load = subprocess.Popen(runner.argv("idle", server, **params), stdout=subprocess.PIPE, text=True)
            try:
                assert load.stdout is not None
                step = json.loads(load.stdout.readline())
                server.settle()
                rss = server.rss_kib() - base
                after = take_census(server, work, 1)
            finally:
                load.kill()
                load.wait()
        finally:
            server.stop()
        if step["open"] < conns:
            print(f"only {step['open']} of {conns} connections stayed open", file=sys.stderr)
        report(before, after, step["open"], rss, top, frames)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    description = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m bench.memory_census", description=description)
    parser.add_argument("--conns", type=int, default=2000, help="idle connections to open (default 2000)")
    parser.add_argument("--deflate", action="store_true", help="clients ask for permessage-deflate")
    parser.add_argument("--top", type=int, default=25, help="allocation sites and types to list")
    parser.add_argument("--frames", type=int, default=1, help="frames per allocation site (default 1)")
    parser.add_argument("--serve", type=int, default=None, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    census_run(args.conns, args.deflate, args.top, args.frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
