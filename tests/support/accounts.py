"""Helpers for tests of the accounts flows on in-process apps."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from litestar.testing import AsyncTestClient

from app.core.app_factory import ParleyApp
from app.core.security.domain_events import SessionsRevoked
from app.main import create_app
from app.modules.accounts import service
from tests.support.backends import Backend

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
FAST_DUMMY_HASH = FAST_HASHER.hash("parley-no-such-user")


def use_fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for apps in this process (the suite's autouse fixture calls it):
    the flows are under test, not the cost, which is a third of a second of both cores a hash."""
    monkeypatch.setattr(service, "_hasher", FAST_HASHER)
    monkeypatch.setattr(service, "_DUMMY_HASH", FAST_DUMMY_HASH)


@contextlib.asynccontextmanager
async def client_for(backend: Backend, **env: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process app with settings of its own; Redis keys under a prefix of their own."""
    env.setdefault("REDIS_PREFIX", f"{backend.redis_prefix}{uuid.uuid4().hex[:8]}:")
    app = create_app(backend.settings(**env))
    async with AsyncTestClient(app=app.litestar, base_url="http://parley.test") as client:
        client.parley = app  # type: ignore[attr-defined]
        yield client


def parley(client: httpx.AsyncClient) -> ParleyApp:
    app: ParleyApp = client.parley  # type: ignore[attr-defined]
    return app


def record_revocations(client: httpx.AsyncClient) -> list[SessionsRevoked]:
    revoked: list[SessionsRevoked] = []

    async def collect(event: SessionsRevoked) -> None:
        revoked.append(event)

    parley(client).context.events.subscribe(SessionsRevoked, collect)
    return revoked
