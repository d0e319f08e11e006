"""HTTP authentication shared by every controller: the same Authenticator as the socket handshake."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from app.core.context import AppContext
from app.core.errors import AppError, ErrorCode
from app.core.security.identity import Authenticator, Identity


def app_context(request: Request[Any, Any, Any]) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AppError(ErrorCode.UNAUTHORIZED, "Missing bearer token")
    authenticator = app_context(request).get(Authenticator)  # type: ignore[type-abstract]
    return await authenticator.authenticate(token.strip())


async def provide_admin(identity: Identity) -> Identity:
    if not identity.is_admin:
        raise AppError(ErrorCode.FORBIDDEN, "Administrators only")
    return identity


def provide_app_context(request: Request[Any, Any, Any]) -> AppContext:
    return app_context(request)


AUTH_DEPENDENCIES = {
    "identity": Provide(provide_identity),
    "admin": Provide(provide_admin),
    "app_ctx": Provide(provide_app_context, sync_to_thread=False),
}
