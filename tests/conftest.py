"""Shared fixtures: the backend matrix, in-process apps and real server processes; how the run is
spread over pytest-xdist workers (`make test`) and the run's migrated templates removed at its end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.accounts import use_fast_password_hashing
from tests.support.backends import (
    BACKENDS,
    WORKER,
    Backend,
    destroy_backend,
    make_backend,
    remove_run_files,
    require_services,
)
from tests.support.redis_servers import RedisCluster
from tests.support.scheduling import SharedWorkScheduling, record_units
from tests.support.server import ServerProcess

_created: dict[str, Backend] = {}

PER_PROCESS = {"backend", "backend_factory"}
"""Shared fixtures that cost nothing to have in several workers: a backend is made once per process."""


def shared_work(item: pytest.Item) -> str | None:
    """The work unit an item belongs to, so the tests that share a server run in one worker.

    Tests using a session fixture of the suite (a deployment of several processes) form one unit
    per such fixture; tests using a module or class fixture (a module's server) one per module and
    backend; the others none, so pytest-xdist hands them out one by one."""
    if not isinstance(item, pytest.Function):
        return None
    shared = {
        name: definitions[-1]
        for name, definitions in item._fixtureinfo.name2fixturedefs.items()
        if name not in PER_PROCESS
        and definitions[-1].scope != "function"
        and definitions[-1].func.__module__.startswith("tests.")
    }
    sessions = {name for name, fixture in shared.items() if fixture.scope in {"session", "package"}}
    # named by the session fixtures the others are built on (`deployment`, not `nginx` beside it)
    roots = sorted(name for name in sessions if not sessions & set(shared[name].argnames))
    if roots:
        return "+".join(roots)
    if shared:
        backend = item.callspec.params.get("backend") if hasattr(item, "callspec") else None
        return f"{item.nodeid.split('::')[0]}:{backend}"  # no "]": pytest-xdist reads a group after it
    return None


UNIT_TESTS = Path(__file__).parent / "unit"


def needs_no_service(items: list[pytest.Item]) -> None:
    """Unit tests run without PostgreSQL and Redis: none may ask for the backends of the suite."""
    served = [
        item.nodeid
        for item in items
        if item.path.is_relative_to(UNIT_TESTS) and "backend_factory" in getattr(item, "fixturenames", ())
    ]
    if served:
        raise pytest.UsageError(f"unit tests need no service, yet these use the suite's backends: {served}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    needs_no_service(items)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """A worker records each test's work unit before it reports its collection to the scheduler."""
    if hasattr(session.config, "workerinput"):
        units = {item.nodeid: unit for item in session.items if (unit := shared_work(item)) is not None}
        record_units(units, WORKER)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> SharedWorkScheduling | None:
    """`--dist loadgroup` spreads the run by the work units of `shared_work`."""
    return SharedWorkScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The first process (never a worker) removes the run's shared files once every test is done."""
    if not hasattr(session.config, "workerinput"):
        remove_run_files()


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps in the test process hash passwords cheaply; `register_directly` makes users whose logins
    are cheap on server processes too."""
    use_fast_password_hashing(monkeypatch)


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
