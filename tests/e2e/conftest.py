"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from tests.support.backends import BACKENDS, Backend
from tests.support.clients import RecordingClient
from tests.support.nginx import DEPLOYMENT_ENV, Deployment, Nginx, two_nodes_behind_nginx
from tests.support.redis_servers import RedisCluster
from tests.support.server import ParleyServe, ServerProcess


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, backend_factory: Callable[[str], Backend]) -> Backend:
    """Per test module, so a module's server processes serve all its tests on one backend."""
    return backend_factory(request.param)


@pytest.fixture(scope="module", params=["redis", "redis-cluster"])
def redis_url(request: pytest.FixtureRequest, backend: Backend) -> str:
    """For the cluster tests: their nodes on one Redis, then on a three-master Redis Cluster."""
    if request.param == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        return cluster.url
    assert backend.redis_url is not None
    return backend.redis_url


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """REST against the test module's `server` fixture (the one server process it shares)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[], RecordingClient]]:
    """Makes RecordingClients for one test and closes them all after it."""
    made: list[RecordingClient] = []

    def make() -> RecordingClient:
        made.append(RecordingClient())
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture(scope="session")
def deployment(
    backend_factory: Callable[[str], Backend], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """nginx before node `a` and node `b` (`--workers 2`) on PostgreSQL + Redis, started once for
    the deployment modules (the rolling restart, which restarts both nodes, runs after the rest)."""
    folder = tmp_path_factory.mktemp("deployment")
    with two_nodes_behind_nginx(backend_factory("postgres"), folder, **DEPLOYMENT_ENV) as started:
        yield started


@pytest.fixture(scope="session")
def nginx(deployment: Deployment) -> Nginx:
    return deployment.nginx


@pytest.fixture(scope="session")
def deployed_nodes(deployment: Deployment) -> list[ParleyServe]:
    return deployment.nodes
