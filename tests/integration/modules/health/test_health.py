"""Operations endpoints on both backends: liveness, readiness, Prometheus metrics and OpenAPI."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from tests.support.backends import Backend
from tests.support.server import free_port

PARLEY_METRICS = {
    "parley_sockets_connected",
    "parley_socket_events_in",
    "parley_socket_events_out",
    "parley_socket_handler_seconds",
    "parley_errors",
    "parley_messages_stored",
    "parley_sync_recoveries",
}


@contextlib.asynccontextmanager
async def client_for(backend: Backend, **env: Any) -> AsyncIterator[httpx.AsyncClient]:
    env.setdefault("REDIS_PREFIX", f"{backend.redis_prefix}{uuid.uuid4().hex[:8]}:")
    app = create_app(backend.settings(**env))
    async with AsyncTestClient(app=app.litestar, base_url="http://parley.test") as client:
        yield client


async def test_liveness(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_checks_the_database_and_redis(app_client: httpx.AsyncClient, backend: Backend) -> None:
    response = await app_client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    expected = {"database": "ok", "redis": "ok"} if backend.redis_url else {"database": "ok"}
    assert body["checks"] == expected


async def test_not_ready_when_the_database_is_unreachable(backend: Backend) -> None:
    closed = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/parley"
    async with client_for(backend, DATABASE_URL=closed) as client:
        assert (await client.get("/health")).status_code == 200
        response = await client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("down")
    assert "127.0.0.1" not in response.text


async def test_metrics_are_prometheus_text(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert set(families) >= PARLEY_METRICS
    assert families["parley_sockets_connected"].type == "gauge"
    assert families["parley_socket_handler_seconds"].type == "histogram"


async def test_metrics_token_is_required_once_set(backend: Backend) -> None:
    token = "scrape-token-0123456789"
    async with client_for(backend, METRICS_TOKEN=token) as client:
        refusals = [
            await client.get("/metrics"),
            await client.get("/metrics", headers={"Authorization": "Bearer not-the-token-0123456"}),
            await client.get("/metrics", headers={"Authorization": f"Basic {token}"}),
            await client.get("/metrics", headers={"Authorization": "Bearer"}),
        ]
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert (await client.get("/health")).status_code == 200, "only /metrics is guarded"
    for refused in refusals:
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "UNAUTHORIZED"
        assert "parley_" not in refused.text
    assert allowed.status_code == 200
    assert "parley_sockets_connected" in allowed.text


async def test_openapi_describes_the_api(app_client: httpx.AsyncClient) -> None:
    response = await app_client.get("/schema/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Parley"
    assert {"/api/auth/register", "/api/auth/login", "/api/auth/me", "/health/ready"} <= set(schema["paths"])
    page = await app_client.get("/schema")
    assert page.status_code == 200
    assert "swagger" in page.text.lower()
