"""Shared fixtures: the backend matrix, in-process apps and real server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import BACKENDS, Backend, destroy_backend, make_backend, require_services
from tests.support.redis_servers import RedisCluster
from tests.support.server import ServerProcess

_created: dict[str, Backend] = {}


@pytest.fixture(scope="session")
def backend_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Backend]]:
    workdir = tmp_path_factory.mktemp("backends")

    def get(name: str) -> Backend:
        if name == "postgres":
            require_services()
        if name not in _created:
            _created[name] = make_backend(name, workdir)
        return _created[name]

    yield get
    for backend in _created.values():
        destroy_backend(backend)
    _created.clear()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, backend_factory: Callable[[str], Backend]) -> Backend:
    """Runs the test once on SQLite + in process and once on PostgreSQL + Redis."""
    return backend_factory(request.param)


@pytest.fixture
async def app_client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in process (lifespan included), over ASGI."""
    from litestar.testing import AsyncTestClient

    from app.main import create_app

    app = create_app(backend.settings())
    async with AsyncTestClient(app=app.litestar, base_url="http://parley.test") as client:
        client.parley = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start real server processes for this test; all are stopped afterwards."""
    started: list[ServerProcess] = []

    def start(backend: Backend, factory: str = "app.asgi:create_asgi", **env: Any) -> ServerProcess:
        server = ServerProcess(backend.env(**env), tmp_path / f"server-{len(started)}.log", factory)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real three-master Redis Cluster on loopback ports, for the tests that run on one."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()
