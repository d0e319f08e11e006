"""Sync, history and search (sending is `MessageSender`'s)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, func, or_, select

from app.core.errors import validation_error
from app.modules.chat.models import Conversation, Message, Participant
from app.modules.chat.rows import LIKE_ESCAPE, MESSAGE_COLUMNS, like_pattern, message_out
from app.modules.chat.schemas import (
    MessageOut,
    MessagePage,
    SyncCursor,
    SyncedConversation,
    SyncError,
)
from app.modules.chat.store import ChatStore


class Messaging(ChatStore):
    async def sync(
        self, user_id: uuid.UUID, cursors: Sequence[SyncCursor], limit: int
    ) -> list[SyncedConversation]:
        """Messages after each cursor, at most `limit` per conversation: two statements in all.

        A conversation the caller may not sync (missing, not theirs) is answered with an `error` in
        its entry; the others are synced all the same. A cursor past a conversation's last seq is a
        bad request: VALIDATION_ERROR naming it. Seqs have no gaps, so the window after a cursor is
        exactly `after_seq+1 … after_seq+limit`.
        """
        wanted = {cursor.conversation_id: cursor.after_seq for cursor in cursors}
        statement = (
            select(Conversation.id, Conversation.last_seq, Participant.id, Participant.last_read_seq)
            .outerjoin(
                Participant,
                and_(Participant.conversation_id == Conversation.id, Participant.user_id == user_id),
            )
            .where(Conversation.id.in_(list(wanted)))
        )
        found: dict[uuid.UUID, SyncFound] = {
            row[0]: (row[1], row[2], row[3]) for row in await self.session.execute(statement)
        }
        errors = {cid: error for cid in wanted if (error := _sync_error(found.get(cid))) is not None}
        last_seqs = {cid: found[cid][0] for cid in wanted if cid not in errors}
        _check_cursors(cursors, last_seqs)
        windows = {
            cid: (after + 1, min(last_seqs[cid], after + limit))
            for cid, after in wanted.items()
            if cid in last_seqs and after < last_seqs[cid]
        }
        by_conversation = await self._messages_in(windows)
        return [
            SyncedConversation(str(cid), [], 0, recovered=False, has_more=False, error=errors[cid])
            if cid in errors
            else SyncedConversation(
                conversation_id=str(cid),
                messages=by_conversation.get(cid, []),
                last_seq=last_seqs[cid],
                recovered=last_seqs[cid] <= after + limit,
                has_more=last_seqs[cid] > after + limit,
                last_read_seq=found[cid][2] or 0,
            )
            for cid, after in wanted.items()
        ]

    async def _messages_in(
        self, windows: dict[uuid.UUID, tuple[int, int]]
    ) -> dict[uuid.UUID, list[MessageOut]]:
        """The messages of each conversation's seq window (inclusive), in one statement."""
        by_conversation: dict[uuid.UUID, list[MessageOut]] = {cid: [] for cid in windows}
        if not windows:
            return by_conversation
        rows = await self.session.execute(
            select(*MESSAGE_COLUMNS)
            .where(
                or_(
                    *(
                        and_(Message.conversation_id == cid, Message.seq.between(low, high))
                        for cid, (low, high) in windows.items()
                    )
                )
            )
            .order_by(Message.conversation_id, Message.seq)
        )
        for row in rows:
            by_conversation[row.conversation_id].append(message_out(row))
        return by_conversation

    async def messages(
        self,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int,
        before_seq: int | None,
        after_seq: int | None,
    ) -> MessagePage:
        """A page of history in ascending seq: after a cursor, before one, or the latest."""
        await self._access(conversation_id, user_id)
        statement = select(*MESSAGE_COLUMNS).where(Message.conversation_id == conversation_id)
        if before_seq is not None:
            statement = statement.where(Message.seq < before_seq)
        if after_seq is not None:
            statement = statement.where(Message.seq > after_seq).order_by(Message.seq)
        else:
            statement = statement.order_by(Message.seq.desc())
        rows = list(await self.session.execute(statement.limit(limit + 1)))
        items = [message_out(row) for row in rows[:limit]]
        if after_seq is None:
            items.reverse()
        return MessagePage(items=items, has_more=len(rows) > limit)

    async def search(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, query: str, limit: int
    ) -> MessagePage:
        """Case-insensitive substring search in any script, newest first (a trigram index serves it on
        PostgreSQL; SQLite folds case with `unicode_lower`, see `app/core/db/engine.py`)."""
        await self._access(conversation_id, user_id)
        pattern = like_pattern(query)
        found = (
            func.unicode_lower(Message.body).like(pattern.lower(), escape=LIKE_ESCAPE)
            if self._dialect == "sqlite"
            else Message.body.ilike(pattern, escape=LIKE_ESCAPE)
        )
        statement = (
            select(*MESSAGE_COLUMNS)
            .where(Message.conversation_id == conversation_id, found)
            .order_by(Message.seq.desc())
            .limit(limit + 1)
        )
        rows = list(await self.session.execute(statement))
        return MessagePage(items=[message_out(row) for row in rows[:limit]], has_more=len(rows) > limit)


SyncFound = tuple[int, uuid.UUID | None, int | None]
"""A conversation as a sync finds it: (last_seq, the caller's participant id, their read position)."""


def _sync_error(found: SyncFound | None) -> SyncError | None:
    """Why the caller may not sync a conversation: missing, or the caller is not in it."""
    if found is None:
        return SyncError("NOT_FOUND", "Conversation not found")
    if found[1] is None:
        return SyncError("FORBIDDEN", "You are not a participant of this conversation")
    return None


def _check_cursors(cursors: Sequence[SyncCursor], last_seqs: dict[uuid.UUID, int]) -> None:
    for index, cursor in enumerate(cursors):
        last_seq = last_seqs.get(cursor.conversation_id)
        if last_seq is not None and cursor.after_seq > last_seq:
            raise validation_error(
                f"conversations.{index}.after_seq", f"is beyond the conversation's last seq {last_seq}"
            )
