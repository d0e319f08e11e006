"""The presence module: online status on every node, and typing indicators."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.core.module import Module
from app.core.security.identity import Identity
from app.core.socket.ready import LimitPart
from app.modules.chat import ConversationBlurred, Membership
from app.modules.presence.controller import PresenceController
from app.modules.presence.declarations import PRESENCE_ROOMS
from app.modules.presence.gateway import PresenceGateway, TypingGateway
from app.modules.presence.presence import Presence
from app.modules.presence.relations import PresenceRelations
from app.modules.presence.room_hooks import PresenceRoomHook
from app.modules.presence.service import LastSeenService
from app.modules.presence.typing import TypingIndicators


async def provide_last_seen_service(db_session: AsyncSession) -> AsyncGenerator[LastSeenService, None]:
    async with LastSeenService.new(session=db_session) as service:
        yield service


async def _connected(ctx: AppContext, identity: Identity, _sid: str) -> None:
    await ctx.get(Presence).connected(identity)


async def _disconnected(ctx: AppContext, identity: Identity, sid: str) -> None:
    await ctx.get(TypingIndicators).socket_closed(sid)
    await ctx.get(Presence).disconnected(identity)


async def _start(ctx: AppContext) -> None:
    typing = ctx.get(TypingIndicators)

    async def stop_typing(event: ConversationBlurred) -> None:
        await typing.stop(event.sid, event.conversation_id, event.user_id)

    ctx.events.subscribe(ConversationBlurred, stop_typing)
    await ctx.get(PresenceRelations).start()
    await ctx.get(Presence).start()


async def _stop(ctx: AppContext) -> None:
    await ctx.get(TypingIndicators).close()
    await ctx.get(Presence).stop()


presence_module = Module(
    name="presence",
    controllers=[PresenceController],
    gateways=[PresenceGateway, TypingGateway],
    dependencies={"last_seen_service": Provide(provide_last_seen_service)},
    providers={Presence: Presence, PresenceRelations: PresenceRelations, TypingIndicators: TypingIndicators},
    room_hooks={PRESENCE_ROOMS.prefix: PresenceRoomHook},
    limits={
        "typing_ttl": LimitPart(lambda settings: settings.typing_ttl, float, 6),
        "presence_ttl": LimitPart(lambda settings: settings.presence_ttl, float, 30),
    },
    on_connect=[_connected],
    on_disconnect=[_disconnected],
    on_startup=[_start],
    on_shutdown=[_stop],
    requires=[Membership],  # whom a user shares a conversation with: chat provides it
)
