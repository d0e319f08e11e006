"""HTTP dependencies of the chat module."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.modules.chat.broadcasts import ChatEvents
from app.modules.chat.service import ChatService


async def provide_chat_service(db_session: AsyncSession) -> AsyncGenerator[ChatService, None]:
    async with ChatService.new(session=db_session) as service:
        yield service


def provide_chat_events(app_ctx: AppContext) -> ChatEvents:
    return app_ctx.get(ChatEvents)


DEPENDENCIES = {
    "chat_service": Provide(provide_chat_service),
    "chat_events": Provide(provide_chat_events, sync_to_thread=False),
}
