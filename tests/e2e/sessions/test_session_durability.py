"""Login sessions outlive restarts: of the server process, of Redis, of both.

The node is killed (a crash, not a graceful stop) and started again on the same port; on PostgreSQL
the node uses a Redis of its own, started by the test on a free port without persistence, so
restarting it empties it without touching the Redis other tests share. Afterwards the access and
refresh tokens issued before keep working, and a client that was connected reconnects with its
token (after a node restart) or takes a refreshed one (after a Redis restart), without logging in.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.backends import IN_CI, Backend
from tests.support.clients import RecordingClient, register_and_login
from tests.support.server import ServerProcess, free_port

pytestmark = pytest.mark.e2e

RECONNECT_TIMEOUT = 20.0


class OwnRedis:
    """A redis-server of the test's own, without persistence: a restart empties it."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        """Start redis-server and return once it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed")
        command = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(command, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    client.ping()
                except redis.ConnectionError:
                    time.sleep(0.05)
                else:
                    return self
        finally:
            client.close()
        raise RuntimeError(f"redis-server did not answer:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def own_redis(backend: Backend, tmp_path: Path) -> Iterator[OwnRedis | None]:
    if backend.redis_url is None:
        yield None
        return
    server = OwnRedis(tmp_path / "redis.log").start()
    yield server
    server.kill()


@pytest.fixture
def node(backend: Backend, own_redis: OwnRedis | None, tmp_path: Path) -> Iterator[ServerProcess]:
    env = backend.env(REDIS_URL=own_redis.url) if own_redis is not None else backend.env()
    server = ServerProcess(env, tmp_path / "node.log").start()
    yield server
    server.stop()


@pytest.fixture
async def http(node: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        yield client


@pytest.fixture
async def reconnecting() -> AsyncIterator[RecordingClient]:
    client = RecordingClient(reconnection=True)
    yield client
    await client.close()


async def test_a_restarted_server_and_redis_keep_every_session(
    node: ServerProcess, own_redis: OwnRedis | None, http: httpx.AsyncClient, reconnecting: RecordingClient
) -> None:
    account = await register_and_login(http)
    await reconnecting.connect(node.url, account.access_token)
    await reconnecting.wait_for("session:ready")
    node.kill()
    if own_redis is not None:
        own_redis.kill()
        own_redis.start()
    node.start()
    again = await reconnecting.wait_for("session:ready", timeout=RECONNECT_TIMEOUT, index=1)
    assert again["session_id"] == account.session_id, "the client reconnected without logging in"
    me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {account.access_token}"})
    assert me.status_code == 200, me.text
    renewed = await http.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert renewed.status_code == 200, renewed.text


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_restarted_redis_keeps_every_session(
    node: ServerProcess,
    own_redis: OwnRedis,
    http: httpx.AsyncClient,
    reconnecting: RecordingClient,
) -> None:
    """Redis alone restarts, empty: REST tokens work, and the connected socket takes a refreshed token."""
    account = await register_and_login(http)
    await reconnecting.connect(node.url, account.access_token)
    await reconnecting.wait_for("session:ready")
    own_redis.kill()
    own_redis.start()
    me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {account.access_token}"})
    assert me.status_code == 200, me.text
    renewed = await http.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert renewed.status_code == 200, renewed.text
    ack = await reconnecting.call("auth:refresh", {"token": renewed.json()["data"]["access_token"]})
    assert ack["ok"] is True, ack
