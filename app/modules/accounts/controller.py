"""`/api/auth/*` and the admin force-logout route."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.core.context import AppContext
from app.core.errors import AppError, ErrorCode
from app.core.http.envelope import Envelope, ok
from app.core.security.identity import Identity
from app.modules.accounts.auth import AuthFlows, user_out
from app.modules.accounts.schemas import (
    ForceLogoutOut,
    LoginIn,
    MeOut,
    RefreshIn,
    RegisterIn,
    TokenPair,
    UserOut,
)
from app.modules.accounts.service import UserService

logger = logging.getLogger(__name__)


async def limit_attempts(request: Request[Any, Any, Any], app_ctx: AppContext) -> None:
    """RATE_LIMIT_AUTH per client address, shared by every node."""
    limits = app_ctx.settings.rate_limits
    if not limits.enabled:
        return
    client = request.client.host if request.client else "unknown"
    allowed = await app_ctx.state.take_token(
        f"auth_rate:{client}", limits.auth.capacity, limits.auth.refill_per_second, limits.auth.per_seconds
    )
    if not allowed:
        raise AppError(ErrorCode.RATE_LIMITED, "Too many attempts; try again later")


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post("/register", status_code=HTTP_201_CREATED, summary="Create an account")
    async def register(
        self,
        request: Request[Any, Any, Any],
        data: RegisterIn,
        users_service: UserService,
        app_ctx: AppContext,
    ) -> Envelope[UserOut]:
        await limit_attempts(request, app_ctx)
        user = await users_service.register(data.username, data.password, data.display_name)
        return ok(user_out(user), "Registered")

    @post("/login", status_code=HTTP_200_OK, summary="Log in: a token pair for a device")
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: LoginIn,
        users_service: UserService,
        auth_flows: AuthFlows,
        app_ctx: AppContext,
    ) -> Envelope[TokenPair]:
        await limit_attempts(request, app_ctx)
        return ok(
            await auth_flows.login(users_service, data.username, data.password, data.device), "Logged in"
        )

    @post("/refresh", status_code=HTTP_200_OK, summary="Trade a refresh token for a new pair")
    async def refresh(
        self, data: RefreshIn, users_service: UserService, auth_flows: AuthFlows
    ) -> Envelope[TokenPair]:
        return ok(await auth_flows.refresh(users_service, data.refresh_token), "Refreshed")

    @post("/logout", status_code=HTTP_200_OK, summary="End this token's session")
    async def logout(
        self, identity: Identity, users_service: UserService, auth_flows: AuthFlows
    ) -> Envelope[None]:
        await auth_flows.logout(users_service, identity)
        return ok(None, "Logged out")

    @get("/me", summary="The signed-in user")
    async def me(self, identity: Identity, users_service: UserService) -> Envelope[MeOut]:
        user = await users_service.by_id(identity.user_id)
        if user is None:
            raise AppError(ErrorCode.UNAUTHORIZED, "Unknown user")
        return ok(
            MeOut(
                id=str(user.id),
                username=user.username,
                display_name=user.display_name,
                is_admin=user.is_admin,
                session_id=identity.session_id,
                created_at=user.created_at,
                last_seen_at=user.last_seen_at,
            )
        )


class AdminUsersController(Controller):
    path = "/api/admin/users"
    tags = ["admin"]

    @post(
        "/{user_id:uuid}/force-logout",
        status_code=HTTP_200_OK,
        summary="Sign a user out of every session (admin)",
    )
    async def force_logout(
        self, user_id: uuid.UUID, admin: Identity, auth_flows: AuthFlows, users_service: UserService
    ) -> Envelope[ForceLogoutOut]:
        if await users_service.by_id(user_id) is None:
            raise AppError(ErrorCode.NOT_FOUND, "User not found")
        revoked = await auth_flows.force_logout(users_service, user_id)
        logger.info("admin %s signed out user %s (%d sessions)", admin.user_id, user_id, revoked)
        return ok(ForceLogoutOut(user_id=str(user_id), revoked_sessions=revoked), "Signed out")
