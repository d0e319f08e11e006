"""Private Redis servers on free loopback ports, started and torn down by a test: a Redis Cluster of
three masters, and a lone Redis whose command statistics no one else touches.

Each cluster master is a `redis-server --cluster-enabled yes` process with its files in a temporary folder;
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


class RedisServers:
    """Redis processes with their files under `workdir`; `stop()` ends them all."""

    def __init__(self, workdir: Path, ports: list[int]) -> None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            unavailable("redis-server and redis-cli are not installed", "private Redis servers")
        self.workdir = workdir
        self.ports = ports
        self.processes: list[subprocess.Popen[bytes]] = []

    def _launch(self, port: int, *options: str) -> None:
        folder = self.workdir / str(port)
        folder.mkdir(parents=True, exist_ok=True)
        log = (folder / "redis.log").open("wb")
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
        command += ["--save", "", "--appendonly", "no", *options]
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        self._wait_for(port, "PONG", "ping")

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

    def calls(self, command: str) -> int:
        """How many times `command` ran, over every server (INFO commandstats)."""
        total = 0
        for port in self.ports:
            for line in self.cli(port, "info", "commandstats").splitlines():
                if line.startswith(f"cmdstat_{command}:"):
                    total += int(line.split("calls=", 1)[1].split(",", 1)[0])
        return total

    def kill_subscribers(self) -> None:
        """Every server drops its pub/sub clients, as it does with one past its output buffer limit."""
        for port in self.ports:
            self.cli(port, "client", "kill", "type", "pubsub")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            if process.poll() is None:
                process.kill()


class LoneRedis(RedisServers):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, [cluster_port()])

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> LoneRedis:
        self._launch(self.ports[0])
        return self

    def subscribers(self, channel: str) -> int:
        return int(self.cli(self.ports[0], "pubsub", "numsub", channel).split()[1])


class RedisCluster(RedisServers):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, [cluster_port() for _ in range(MASTERS)])

    @property
    def url(self) -> str:
        """REDIS_URL of this cluster: any master is a seed, the client learns the rest."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisCluster:
        for port in self.ports:
            self._launch(
                port, "--cluster-enabled", "yes", "--cluster-config-file", str(self.workdir / f"{port}.conf")
            )
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

    def move_slot(self, channel: str) -> None:
        """Hand the slot of `channel` (which holds no key) from its master to another one, as a
        resharding does: the new owner takes it with a newer epoch, then every master learns it."""
        slot = self.cli(self.ports[0], "cluster", "keyslot", channel).strip()
        owner = next(port for port in self.ports if self._owns(port, int(slot)))
        target = next(port for port in self.ports if port != owner)
        target_id = self.cli(target, "cluster", "myid").strip()
        self.cli(target, "cluster", "setslot", slot, "node", target_id)
        self.cli(target, "cluster", "bumpepoch")
        for port in self.ports:
            if port != target:
                self.cli(port, "cluster", "setslot", slot, "node", target_id)

    def _owns(self, port: int, slot: int) -> bool:
        me = self.cli(port, "cluster", "myid").strip()
        for line in self.cli(port, "cluster", "nodes").splitlines():
            fields = line.split()
            if fields[0] == me:
                ranges = [part.split("-") for part in fields[8:] if not part.startswith("[")]
                return any(int(r[0]) <= slot <= int(r[-1]) for r in ranges)
        return False

    def subscribers(self, channel: str) -> int:
        return self.shard_subscriptions().get(channel, 0)

    def shard_subscriptions(self) -> dict[str, int]:
        """Subscribers of every shard channel, over all masters (`PUBSUB SHARDNUMSUB` per channel)."""
        counts: dict[str, int] = {}
        for port in self.ports:
            channels = self.cli(port, "pubsub", "shardchannels").split()
            if channels:
                answer = self.cli(port, "pubsub", "shardnumsub", *channels).split()
                counts.update(zip(answer[::2], map(int, answer[1::2]), strict=True))
        return counts
