"""Room hook of the accounts module: `session:{id}` is open to the session's own user only."""

from __future__ import annotations

from app.core.context import AppContext
from app.modules.accounts.sessions import SessionStore


class OwnSessionHook:
    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions

    async def can_join(self, user_id: str, room: str) -> bool:
        record = await self.sessions.get(room.removeprefix("session:"))
        return record is not None and record.user_id == user_id


def session_hook(ctx: AppContext) -> OwnSessionHook:
    return OwnSessionHook(ctx.get(SessionStore))
