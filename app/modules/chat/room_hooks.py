"""Who may be in the chat's rooms, and the `Membership` other modules ask (presence, typing)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.core.context import AppContext
from app.core.socket.rooms import RoomPrefix
from app.modules.chat.membership import Membership
from app.modules.chat.service import ChatService


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class ChatMembership:
    """The app's `Membership`: answers from the participants table, one query per question."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def is_participant(self, conversation_id: str, user_id: str) -> bool:
        conversation, user = parse_id(conversation_id), parse_id(user_id)
        if conversation is None or user is None:
            return False
        async with self.ctx.unit_of_work() as uow:
            return await uow.service(ChatService).is_participant(conversation, user)

    async def contacts_among(self, user_id: str, candidates: Sequence[str]) -> set[str]:
        user = parse_id(user_id)
        wanted = [uid for uid in (parse_id(c) for c in candidates) if uid is not None]
        if user is None or not wanted:
            return set()
        async with self.ctx.unit_of_work() as uow:
            return await uow.service(ChatService).contacts_among(user, wanted)


class ParticipantRoomHook:
    """`group:{id}` and `active:{id}`: participants of conversation `id` only."""

    def __init__(self, membership: Membership, rooms: RoomPrefix) -> None:
        self.membership = membership
        self.rooms = rooms

    async def can_join(self, user_id: uuid.UUID, room: str) -> bool:
        return await self.membership.is_participant(self.rooms.key_of(room), str(user_id))
