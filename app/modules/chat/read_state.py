"""Read cursors and unread counts."""

from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, case, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.driver_reads import DriverReads
from app.core.errors import forbidden, validation_error
from app.modules.chat.models import Conversation, Message, Notification, Participant
from app.modules.chat.rows import MESSAGE_COLUMNS, ReadState, encode_cursor, message_out
from app.modules.chat.schemas import ReadOut, UnreadConversation, UnreadSummary
from app.modules.chat.store import ChatStore

if TYPE_CHECKING:
    from app.modules.chat.broadcasts import ChatEvents


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
        """(unread of one conversation, unread of all the user's unmuted conversations) in one statement."""
        unread = Conversation.last_seq - Participant.last_read_seq
        counted = and_(Participant.muted_at.is_(None), Conversation.last_seq > Participant.last_read_seq)
        statement = (
            select(
                func.coalesce(
                    func.sum(case((Participant.conversation_id == conversation_id, unread), else_=0)), 0
                ),
                func.coalesce(func.sum(case((counted, unread), else_=0)), 0),
            )
            .select_from(Participant)
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .where(Participant.user_id == user_id)
        )
        row = (await self.session.execute(statement)).one()
        return int(row[0]), int(row[1])

    async def unread_summary(self, user_id: uuid.UUID, window: int) -> UnreadSummary:
        return await unread_summary(self.session, user_id, window)

    async def unread_notifications(self, user_id: uuid.UUID) -> int:
        statement = select(func.count()).where(
            Notification.user_id == user_id, Notification.read_at.is_(None)
        )
        return int((await self.session.execute(statement)).scalar_one())


async def unread_summary(session: AsyncSession, user_id: uuid.UUID, window: int) -> UnreadSummary:
    """The unread state of the `window` most recently active unmuted conversations, with the total
    of all of them and the unread notifications: one statement, whatever the numbers. A function of
    the session, so that a request runs it without building a service."""
    connection = await session.connection()  # plain rows: the ORM's execution path is not needed
    return _summary_of(
        list(await connection.execute(_summary_statement(window), {"user_id": user_id})), window
    )


async def ready_unread_summary(reads: DriverReads, user_id: uuid.UUID, window: int) -> UnreadSummary:
    """`unread_summary` for `session:ready`: its one statement on the driver's connection, with no
    session nor transaction around it (every connect runs it)."""
    return _summary_of(await reads.rows(_summary_statement(window), {"user_id": user_id}), window)


def _summary_of(found: list[Any], window: int) -> UnreadSummary:
    """The summary from the rows of `_summary_statement`."""
    notifications = int(found[0].notifications)
    rows = [row for row in found if row.conversation_id is not None]
    conversations = [
        UnreadConversation(
            conversation_id=str(row.conversation_id),
            unread=row.last_seq - row.last_read_seq,
            last_seq=row.last_seq,
            last_read_seq=row.last_read_seq,
            mentions=row.mentions,
            last_message=message_out(row) if row.id is not None else None,
        )
        for row in rows
        if row.last_seq > row.last_read_seq
    ]
    more = bool(rows) and rows[0].conversations > window
    return UnreadSummary(
        conversations=conversations,
        total=int(rows[0].total) if rows else 0,
        notifications=notifications,
        more=more,
        next_cursor=encode_cursor(rows[-1].active_at, rows[-1].conversation_id) if more else None,
    )


@functools.cache
def _summary_statement(window: int) -> Any:
    """The count of the user's unread notifications on one row, joined to every row of the window
    (`_window_statement`): one row with no conversation when the user has none. Built once per window
    size, like the window."""
    user_id = bindparam("user_id", type_=Participant.__table__.c.user_id.type)
    counted = (
        select(func.count().label("notifications"))
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .subquery("unread_notifications")
    )
    rows = _window_statement(window).subquery("unread_window")
    return (
        select(counted.c.notifications, *rows.c)
        .select_from(counted)
        .outerjoin(rows, true())
        .order_by(rows.c.active_at.desc(), rows.c.conversation_id.desc())
    )


@functools.cache
def _window_statement(window: int) -> Any:
    """The `window` most recently active unmuted conversations of the user `:user_id`, newest first,
    each with its unread state (the last message and the unread mentions only when it has unread
    messages); window functions add, on every row, the unread total and the count of all of them.
    Built once per window size: every `session:ready` runs it, and building it anew took about a
    tenth of a connect's server CPU."""
    user_id = bindparam("user_id", type_=Participant.__table__.c.user_id.type)
    has_unread = Conversation.last_seq > Participant.last_read_seq
    unread = case((has_unread, Conversation.last_seq - Participant.last_read_seq), else_=0)
    mentions = (
        select(func.count())
        .select_from(Notification)
        .join(Message, Message.id == Notification.message_id)
        .where(
            Notification.user_id == user_id,
            Notification.conversation_id == Participant.conversation_id,
            Notification.kind == "mention",
            Message.seq > Participant.last_read_seq,
        )
        .scalar_subquery()
    )
    return (
        select(
            Participant.conversation_id,
            Conversation.last_seq,
            Participant.last_read_seq,
            Conversation.updated_at.label("active_at"),
            case((has_unread, mentions), else_=0).label("mentions"),
            func.sum(unread).over().label("total"),
            func.count().over().label("conversations"),
            *MESSAGE_COLUMNS,
        )
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .outerjoin(
            Message,
            and_(
                Message.conversation_id == Conversation.id, Message.seq == Conversation.last_seq, has_unread
            ),
        )
        .where(Participant.user_id == user_id, Participant.muted_at.is_(None))
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(window)
    )
