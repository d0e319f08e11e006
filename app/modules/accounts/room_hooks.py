"""Room hook of the accounts module: `session:{id}` is open to the user of that live session only."""

from __future__ import annotations

import uuid

from app.core.context import AppContext
from app.core.socket.rooms import SESSION_ROOMS
from app.modules.accounts.sessions import SessionStore


class OwnSessionHook:
    def __init__(self, ctx: AppContext, sessions: SessionStore) -> None:
        self.ctx = ctx
        self.sessions = sessions

    async def can_join(self, user_id: uuid.UUID, room: str) -> bool:
        async with self.ctx.unit_of_work() as uow:
            record = await self.sessions.live(uow.session, SESSION_ROOMS.key_of(room))
        return record is not None and record.user_id == user_id


def session_hook(ctx: AppContext) -> OwnSessionHook:
    return OwnSessionHook(ctx, ctx.get(SessionStore))
