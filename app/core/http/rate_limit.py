"""REST rate limits: the writes of each caller draw on one token bucket, as socket events do.

A caller is the subject of a valid bearer token (checked by signature and expiry only, which costs
no lookup) or, without one, the client address. Every POST, PUT, PATCH and DELETE counts, and so
does a read whose handler is marked `opt={"rate_limited": True}` (a lookup that could be used to
guess names in bulk). The bucket lives in the state backend, so all nodes share it.
"""

from __future__ import annotations

import math
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from app.core.context import AppContext
from app.core.errors import AppError, ErrorCode, ErrorDetails

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def caller_key(connection: ASGIConnection[Any, Any, Any, Any], ctx: AppContext) -> str:
    """`user:{sub}` for a valid bearer token, else `address:{client host}`."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        try:
            return f"user:{ctx.tokens.verify(token.strip()).subject}"
        except AppError:
            pass
    client = connection.client.host if connection.client else "unknown"
    return f"address:{client}"


async def rest_rate_limit(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A guard on every route: RATE_LIMITED (429, `details.retry_after`, `details.limit`) past the bucket."""
    method = connection.scope.get("method", "")
    if method not in WRITE_METHODS and not handler.opt.get("rate_limited"):
        return
    ctx: AppContext = connection.app.state.ctx
    limits = ctx.settings.rate_limits
    if not limits.enabled:
        return
    limit = limits.rest
    key = f"rest_rate:{caller_key(connection, ctx)}"
    wait = await ctx.state.take_token_or_wait(key, limit.capacity, limit.refill_per_second, limit.per_seconds)
    if wait > 0:
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"Too many requests; retry in {wait:.2f}s",
            {"retry_after": round(wait, 3), "limit": str(limit)},
        )


def retry_after_header(details: ErrorDetails | None) -> dict[str, str]:
    """`Retry-After` (whole seconds, rounded up) for a RATE_LIMITED answer that knows the wait."""
    wait = (details or {}).get("retry_after")
    return {"Retry-After": str(max(1, math.ceil(wait)))} if isinstance(wait, int | float) else {}
