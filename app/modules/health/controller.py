"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from app.core.context import AppContext
from app.core.errors import AppError, ErrorCode

CHECK_TIMEOUT = 2.0


class Health(msgspec.Struct):
    status: str
    checks: dict[str, str]


async def _check(name: str, probe: Awaitable[None]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the kind is reported
        return name, f"down: {type(exc).__name__}"
    return name, "ok"


class HealthController(Controller):
    path = "/"
    tags = ["operations"]
    include_in_schema = True

    @get("/health", summary="Liveness")
    async def live(self) -> Health:
        return Health(status="ok", checks={})

    @get("/health/ready", summary="Readiness: database and Redis reachable")
    async def ready(self, app_ctx: AppContext) -> Response[Health]:
        probes = [_check("database", app_ctx.db.ping())]
        if app_ctx.settings.redis_url:
            probes.append(_check("redis", app_ctx.state.ping()))
        checks = dict(await asyncio.gather(*probes))
        healthy = all(value == "ok" for value in checks.values())
        return Response(
            Health(status="ok" if healthy else "unavailable", checks=checks),
            status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE,
        )

    @get("/metrics", media_type="text/plain; version=0.0.4", summary="Prometheus metrics")
    async def metrics(self, app_ctx: AppContext, request: Request[Any, Any, Any]) -> bytes:
        """Prometheus metrics of every worker of this node; with METRICS_TOKEN set, only for
        `Authorization: Bearer <METRICS_TOKEN>`."""
        expected = app_ctx.settings.serve.metrics_token
        if expected is not None:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                presented.strip().encode(), expected.encode()
            ):
                raise AppError(ErrorCode.UNAUTHORIZED, "/metrics needs the METRICS_TOKEN as a bearer token")
        return app_ctx.metrics.render()
