"""Read cursors and unread counts."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import and_, case, func, select, update

from app.core.errors import forbidden, validation_error
from app.modules.chat.models import Conversation, Message, Notification, Participant
from app.modules.chat.rows import MESSAGE_COLUMNS, ReadState, message_out
from app.modules.chat.schemas import ReadOut, UnreadConversation, UnreadSummary
from app.modules.chat.store import ChatStore

if TYPE_CHECKING:
    from app.modules.chat.events import ChatEvents


class ReadStates(ChatStore):
    async def mark_read(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, last_read_seq: int, *, events: ChatEvents
    ) -> ReadOut:
        """Move the read cursor forward (never back, never past `last_seq`); three statements at most."""
        conversation, participant = await self._access(conversation_id, user_id)
        if last_read_seq > conversation.last_seq:
            raise validation_error(
                "last_read_seq", f"is beyond the conversation's last seq {conversation.last_seq}"
            )
        if last_read_seq <= participant.last_read_seq:
            return ReadOut(
                str(conversation_id),
                participant.last_read_seq,
                conversation.last_seq - participant.last_read_seq,
            )
        statement = (
            update(Participant)
            .where(Participant.conversation_id == conversation_id, Participant.user_id == user_id)
            .values(
                last_read_seq=case(
                    (Participant.last_read_seq < last_read_seq, last_read_seq),
                    else_=Participant.last_read_seq,
                )
            )
            .returning(Participant.last_read_seq)
            .execution_options(synchronize_session=False)
        )
        now_read: int | None = (await self.session.execute(statement)).scalar_one_or_none()
        if now_read is None:
            raise forbidden("You are not a participant of this conversation")
        unread, total = await self._unread_totals(user_id, conversation_id)
        await self.session.commit()
        state = ReadState(ReadOut(str(conversation_id), now_read, unread), total=total)
        await events.read_advanced(str(user_id), state)
        return state.read

    async def _unread_totals(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> tuple[int, int]:
        """(unread of one conversation, unread of all the user's conversations) in one statement."""
        unread = Conversation.last_seq - Participant.last_read_seq
        statement = (
            select(
                func.coalesce(
                    func.sum(case((Participant.conversation_id == conversation_id, unread), else_=0)), 0
                ),
                func.coalesce(func.sum(unread), 0),
            )
            .select_from(Participant)
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .where(Participant.user_id == user_id)
        )
        row = (await self.session.execute(statement)).one()
        return int(row[0]), int(row[1])

    async def unread_summary(self, user_id: uuid.UUID) -> UnreadSummary:
        """Each conversation with unread messages, its last message and unread mentions: two statements."""
        statement = (
            select(
                Participant.conversation_id,
                Conversation.last_seq,
                Participant.last_read_seq,
                *MESSAGE_COLUMNS,
            )
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .outerjoin(
                Message,
                and_(Message.conversation_id == Conversation.id, Message.seq == Conversation.last_seq),
            )
            .where(Participant.user_id == user_id, Conversation.last_seq > Participant.last_read_seq)
            .order_by(Conversation.updated_at.desc())
        )
        rows = list(await self.session.execute(statement))
        mentions = await self._unread_mentions(user_id) if rows else {}
        conversations = [
            UnreadConversation(
                conversation_id=str(row[0]),
                unread=row[1] - row[2],
                last_seq=row[1],
                last_read_seq=row[2],
                mentions=mentions.get(row[0], 0),
                last_message=message_out(row) if row.id is not None else None,
            )
            for row in rows
        ]
        return UnreadSummary(conversations=conversations, total=sum(c.unread for c in conversations))

    async def _unread_mentions(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
        statement = (
            select(Notification.conversation_id, func.count())
            .join(Message, Message.id == Notification.message_id)
            .join(
                Participant,
                and_(
                    Participant.conversation_id == Notification.conversation_id,
                    Participant.user_id == Notification.user_id,
                ),
            )
            .where(
                Notification.user_id == user_id,
                Notification.kind == "mention",
                Message.seq > Participant.last_read_seq,
            )
            .group_by(Notification.conversation_id)
        )
        return {row[0]: int(row[1]) for row in await self.session.execute(statement) if row[0] is not None}
