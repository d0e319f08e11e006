"""HTTP dependencies of the accounts module."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.modules.accounts.auth import AuthFlows
from app.modules.accounts.service import UserService


async def provide_users_service(db_session: AsyncSession) -> AsyncGenerator[UserService, None]:
    async with UserService.new(session=db_session) as service:
        yield service


def provide_auth_flows(app_ctx: AppContext) -> AuthFlows:
    return app_ctx.get(AuthFlows)


DEPENDENCIES = {
    "users_service": Provide(provide_users_service),
    "auth_flows": Provide(provide_auth_flows, sync_to_thread=False),
}
