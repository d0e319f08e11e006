"""A real Redis Cluster of three masters on free loopback ports, started and torn down by a test.

Each master is a `redis-server --cluster-enabled yes` process with its files in a temporary folder;
`redis-cli --cluster create` assigns the slots, and the cluster is ready once every master reports
`cluster_state:ok` and knows all three.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.backends import unavailable


MASTERS = 3
READY_WITHIN = 30.0
BUS_OFFSET = 10000
"""A master also listens on its port + 10000 (the cluster bus), so its port must be at most 55535."""


def cluster_port() -> int:
    """A free loopback port whose cluster bus port is free as well."""
    for candidate in random.sample(range(20000, 65535 - BUS_OFFSET), 200):
        if all(_free(port) for port in (candidate, candidate + BUS_OFFSET)):
            return candidate
    raise RuntimeError("no free pair of loopback ports for a Redis Cluster master")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RedisCluster:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = [cluster_port() for _ in range(MASTERS)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """REDIS_URL of this cluster: any master is a seed, the client learns the rest."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisCluster:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            unavailable("redis-server and redis-cli are not installed", "a Redis Cluster")
        for port in self.ports:
            self.processes.append(self._master(port))
        for port in self.ports:
            self._wait_for(port, "PONG", "ping")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=READY_WITHIN,
        )
        for port in self.ports:
            self._wait_for(port, "cluster_state:ok", "cluster", "info")
            self._wait_for(port, f"cluster_known_nodes:{MASTERS}", "cluster", "info")
        return self

    def _master(self, port: int) -> subprocess.Popen[bytes]:
        folder = self.workdir / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        log = (folder / "redis.log").open("wb")
        return subprocess.Popen(
            [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(folder),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(folder / "nodes.conf"),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def cli(self, port: int, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout

    def _wait_for(self, port: int, text: str, *args: str) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while text not in self.cli(port, *args):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis on port {port} never answered {text!r} to {' '.join(args)}")
            time.sleep(0.1)

    def shard_subscriptions(self) -> dict[str, int]:
        """Subscribers of every shard channel, over all masters (`PUBSUB SHARDNUMSUB` per channel)."""
        counts: dict[str, int] = {}
        for port in self.ports:
            channels = self.cli(port, "pubsub", "shardchannels").split()
            if channels:
                answer = self.cli(port, "pubsub", "shardnumsub", *channels).split()
                counts.update(zip(answer[::2], map(int, answer[1::2]), strict=True))
        return counts

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            if process.poll() is None:
                process.kill()
