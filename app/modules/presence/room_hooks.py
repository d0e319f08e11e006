"""Who may join `presence:{userId}`: the user themself and users who share a conversation with them."""

from __future__ import annotations

import uuid

from app.core.context import AppContext
from app.modules.presence.declarations import PRESENCE_ROOMS
from app.modules.presence.presence import Presence


def canonical_user_id(text: str) -> str | None:
    """The id if `text` is a UUID in its canonical (lower-case, hyphenated) form."""
    try:
        return text if str(uuid.UUID(text)) == text else None
    except ValueError:
        return None


class PresenceRoomHook:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def can_join(self, user_id: uuid.UUID, room: str) -> bool:
        target = canonical_user_id(PRESENCE_ROOMS.key_of(room))
        if target is None:
            return False
        return target in await self.ctx.get(Presence).visible_to(user_id, [target])
