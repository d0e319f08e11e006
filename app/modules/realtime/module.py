"""The realtime module: built-in room hooks, the gateway's own events, and revocation → force_logout."""

from __future__ import annotations

from app.core.context import AppContext
from app.core.module import Module
from app.core.security.domain_events import SessionsRevoked
from app.core.socket.rooms import BROADCAST_ROOMS, USER_ROOMS, AnyoneHook, OwnIdHook
from app.modules.realtime.gateway import RealtimeGateway


async def _subscribe_revocations(ctx: AppContext) -> None:
    async def disconnect_revoked(event: SessionsRevoked) -> None:
        """Found by identity on every node: a client cannot hide a socket by leaving rooms."""
        users = [str(event.user_id)] if event.all_sockets else []
        await ctx.hub.force_logout(event.reason, event.message, users=users, sessions=event.session_ids)

    ctx.events.subscribe(SessionsRevoked, disconnect_revoked)


realtime_module = Module(
    name="realtime",
    gateways=[RealtimeGateway],
    room_hooks={
        USER_ROOMS.prefix: lambda _ctx: OwnIdHook(USER_ROOMS),
        BROADCAST_ROOMS.prefix: lambda _ctx: AnyoneHook(),
    },
    on_startup=[_subscribe_revocations],
)
