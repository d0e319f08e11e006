"""HTTP dependencies of the chat module."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.modules.chat.broadcasts import ChatEvents
from app.modules.chat.sending import MessageSender
from app.modules.chat.service import ChatService
from app.modules.chat.writer import MessageWriter


async def provide_chat_service(db_session: AsyncSession) -> AsyncGenerator[ChatService, None]:
    async with ChatService.new(session=db_session) as service:
        yield service


def provide_chat_events(app_ctx: AppContext) -> ChatEvents:
    return app_ctx.get(ChatEvents)


def provide_chat_writer(app_ctx: AppContext) -> MessageWriter:
    return app_ctx.get(MessageWriter)


def provide_chat_sender(app_ctx: AppContext) -> MessageSender:
    return app_ctx.get(MessageSender)


DEPENDENCIES = {
    "chat_service": Provide(provide_chat_service),
    "chat_events": Provide(provide_chat_events, sync_to_thread=False),
    "chat_writer": Provide(provide_chat_writer, sync_to_thread=False),
    "chat_sender": Provide(provide_chat_sender, sync_to_thread=False),
}
