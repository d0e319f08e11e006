"""The module system: a module's controllers, providers, dependencies and lifecycle hooks are composed
by `create_app`; clashes are refused at start; unexpected errors answer 500 INTERNAL and leak nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from litestar import Controller, get
from litestar.di import Provide
from litestar.testing import AsyncTestClient
from sqlalchemy.exc import OperationalError

from app.core.app_factory import ParleyApp
from app.core.context import AppContext
from app.core.http.envelope import Envelope, ok
from app.core.module import Module, ModuleError
from app.db.migrate import upgrade
from app.main import MODULES, create_app
from tests.support.backends import Backend

LEAKY_SQL = "SELECT password_hash FROM users WHERE username = 'alice'"


class Greeter:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting


def provide_punctuation() -> str:
    return "!"


class ProbeController(Controller):
    path = "/api/probe"

    @get("/greet")
    async def greet(self, app_ctx: AppContext, punctuation: str) -> Envelope[str]:
        return ok(app_ctx.get(Greeter).greeting + punctuation)

    @get("/sql-failure")
    async def sql_failure(self) -> None:
        raise OperationalError(LEAKY_SQL, {"username": "alice"}, Exception("database is locked"))

    @get("/bug")
    async def bug(self) -> None:
        raise KeyError("internal detail /srv/parley/app.py")


def probe_module(calls: list[str]) -> Module:
    async def started(ctx: AppContext) -> None:
        calls.append(f"start:{ctx.get(Greeter).greeting}")

    async def stopped(_ctx: AppContext) -> None:
        calls.append("stop")

    return Module(
        name="probe",
        controllers=[ProbeController],
        dependencies={"punctuation": Provide(provide_punctuation, sync_to_thread=False)},
        providers={Greeter: lambda _ctx: Greeter("hello")},
        on_startup=[started],
        on_shutdown=[stopped],
    )


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Backend:
    database = tmp_path_factory.mktemp("modules") / "parley.db"
    embedded = Backend("sqlite", f"sqlite+aiosqlite:///{database}", None, "parley-module-test:")
    upgrade(embedded.settings())
    return embedded


@contextlib.asynccontextmanager
async def serve(backend: Backend, modules: Sequence[Module]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(backend.settings(), modules=modules)
    async with AsyncTestClient(app=app.litestar, base_url="http://parley.test") as client:
        client.parley = app  # type: ignore[attr-defined]
        yield client


async def test_a_module_is_composed_into_the_app(backend: Backend) -> None:
    calls: list[str] = []
    async with serve(backend, (*MODULES, probe_module(calls))) as client:
        response = await client.get("/api/probe/greet")
        assert response.status_code == 200
        assert response.json()["data"] == "hello!"
        assert calls == ["start:hello"]
        app: ParleyApp = client.parley  # type: ignore[attr-defined]
        assert app.context.get(Greeter).greeting == "hello"
        assert (await client.get("/health")).status_code == 200
    assert calls == ["start:hello", "stop"]


async def test_the_asgi_app_serves_litestar_and_socketio(backend: Backend) -> None:
    app = create_app(backend.settings())
    async with AsyncTestClient(app=app.asgi, base_url="http://parley.test") as client:
        assert (await client.get("/health")).status_code == 200
        handshake = await client.get(
            "/socket.io/",
            params={"EIO": "4", "transport": "polling"},
            headers={"Origin": "http://parley.test"},
        )
        assert handshake.status_code == 200
        assert handshake.text.startswith("0{")


@pytest.mark.parametrize("path", ["/api/probe/sql-failure", "/api/probe/bug"])
async def test_an_unexpected_error_answers_500_internal_without_details(
    backend: Backend, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(backend, (*MODULES, probe_module([]))) as client:
        response = await client.get(path)
    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False
    assert body["error"] == {"code": "INTERNAL", "message": "Internal server error", "details": None}
    for leak in ("SELECT", "password_hash", "Traceback", "locked", "/srv/parley", "KeyError"):
        assert leak not in response.text
    assert any(record.levelname == "ERROR" and path in record.getMessage() for record in caplog.records)


def test_a_dependency_provided_twice_is_refused(backend: Backend) -> None:
    twin = Module(
        name="twin", dependencies={"punctuation": Provide(provide_punctuation, sync_to_thread=False)}
    )
    with pytest.raises(RuntimeError, match=r"'punctuation' of module twin"):
        create_app(backend.settings(), modules=(*MODULES, probe_module([]), twin))


def test_a_provider_registered_twice_is_refused(backend: Backend) -> None:
    twin = Module(name="twin", providers={Greeter: lambda _ctx: Greeter("again")})
    with pytest.raises(RuntimeError, match="Greeter is provided by both module 'probe' and module 'twin'"):
        create_app(backend.settings(), modules=(*MODULES, probe_module([]), twin))


def test_asking_for_what_no_module_provides_names_it(backend: Backend) -> None:
    app = create_app(backend.settings(), modules=MODULES)
    with pytest.raises(RuntimeError, match="no module provides Greeter"):
        app.context.get(Greeter)


def test_every_module_has_a_unique_name() -> None:
    names = [module.name for module in MODULES]
    assert len(names) == len(set(names))
    assert {"accounts", "health"} <= set(names)


class Doorbell:
    def __init__(self, greeter: Greeter) -> None:
        self.greeter = greeter


async def test_modules_listed_before_their_providers_start_after_them(backend: Backend) -> None:
    """The probe's provider and start-up hook use the doorbell module's, which is listed after it."""
    calls: list[str] = []

    async def rang(ctx: AppContext) -> None:
        calls.append(f"ring:{ctx.get(Doorbell).greeter.greeting}")

    doorbell = Module(
        name="doorbell",
        providers={Doorbell: lambda ctx: Doorbell(ctx.get(Greeter))},
        on_startup=[rang],
        requires=[Greeter],
    )
    async with serve(backend, (doorbell, *reversed(MODULES), probe_module(calls))) as client:
        assert (await client.get("/api/probe/greet")).json()["data"] == "hello!"
        assert calls == ["start:hello", "ring:hello"]


@pytest.mark.parametrize(
    ("left_out", "reason"),
    [
        (
            "chat",
            "module 'presence' requires app.modules.chat.membership.Membership, which no module provides",
        ),
        (
            "accounts",
            "Parley's core needs app.core.security.identity.Authenticator, which no module provides",
        ),
    ],
)
def test_leaving_out_a_provider_stops_start_up_naming_it(
    backend: Backend, left_out: str, reason: str
) -> None:
    with pytest.raises(ModuleError) as refused:
        create_app(backend.settings(), modules=[module for module in MODULES if module.name != left_out])
    assert str(refused.value) == reason
