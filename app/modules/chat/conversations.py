"""Conversations and their participants: list, open, rename, delete, add, remove, leave."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from app.core.db import utc_now
from app.core.errors import AppError, ErrorCode, forbidden, not_found, validation_error
from app.modules.chat.models import Conversation, Message, Participant, direct_key
from app.modules.chat.read_state import ReadStates
from app.modules.chat.rows import (
    MANAGERS,
    MESSAGE_COLUMNS,
    USERS,
    Created,
    Removal,
    conversation_out,
    decode_cursor,
    encode_cursor,
    message_out,
)
from app.modules.chat.schemas import (
    ConversationOut,
    ConversationPage,
    ConversationSummaryOut,
    MessageOut,
    MuteOut,
    UnreadUpdate,
)

if TYPE_CHECKING:
    from app.core.security.identity import Identity
    from app.modules.chat.batch import Attempt
    from app.modules.chat.broadcasts import ChatEvents
    from app.modules.chat.writer import MessageWriter


class Conversations(ReadStates):
    async def list_for(self, user_id: uuid.UUID, limit: int, cursor: str | None) -> ConversationPage:
        """The user's conversations, most recently active first, each with last message and unread."""
        statement = (
            select(Conversation, Participant.last_read_seq, Participant.muted_at, *MESSAGE_COLUMNS)
            .join(
                Participant,
                and_(Participant.conversation_id == Conversation.id, Participant.user_id == user_id),
            )
            .outerjoin(
                Message,
                and_(Message.conversation_id == Conversation.id, Message.seq == Conversation.last_seq),
            )
            .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
            .limit(limit + 1)
        )
        if cursor is not None:
            updated_at, after_id = decode_cursor(cursor)
            statement = statement.where(
                or_(
                    Conversation.updated_at < updated_at,
                    and_(Conversation.updated_at == updated_at, Conversation.id < after_id),
                )
            )
        rows = list(await self.session.execute(statement))
        page = rows[:limit]
        participants = await self._participants([row[0].id for row in page]) if page else {}
        items = [
            ConversationSummaryOut(
                **msgspec.structs.asdict(conversation_out(row[0], participants[row[0].id])),
                last_message=message_out(row) if row.id is not None else None,
                unread=row[0].last_seq - row[1],
                muted=row[2] is not None,
            )
            for row in page
        ]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1][0]
            next_cursor = encode_cursor(last.updated_at, last.id)
        return ConversationPage(items=items, next_cursor=next_cursor)

    async def _existing_users(self, user_ids: Sequence[uuid.UUID], field_name: str) -> None:
        if not user_ids:
            return
        found = set(
            (await self.session.execute(select(USERS.c.id).where(USERS.c.id.in_(user_ids)))).scalars()
        )
        unknown = [str(uid) for uid in user_ids if uid not in found]
        if unknown:
            raise AppError(
                ErrorCode.VALIDATION_ERROR,
                f"{field_name}: unknown users {', '.join(unknown)}",
                {"field": field_name, "unknown": unknown},
            )

    async def open_conversation(
        self,
        creator: uuid.UUID,
        kind: str,
        title: str | None,
        participant_ids: Sequence[uuid.UUID],
        *,
        events: ChatEvents,
    ) -> Created:
        """A group, or the direct conversation of a pair (the existing one if there is one)."""
        others = [uid for uid in dict.fromkeys(participant_ids) if uid != creator]
        if kind == "direct":
            if len(others) != 1:
                raise validation_error(
                    "participant_ids", "a direct conversation needs exactly one other user"
                )
            if title is not None:
                raise validation_error("title", "a direct conversation has no title")
        elif title is None or not title.strip():
            raise validation_error("title", "a group needs a title")
        await self._existing_users(others, "participant_ids")
        conversation_id = uuid.uuid4()
        values: dict[str, Any] = {"id": conversation_id, "kind": kind, "title": title, "created_by": creator}
        if kind == "direct":
            values["direct_key"] = direct_key(creator, others[0])
        statement = self._insert(Conversation).values(**values)
        if kind == "direct":
            statement = statement.on_conflict_do_nothing(index_elements=["direct_key"])
        inserted = (await self.session.execute(statement.returning(Conversation.id))).scalar_one_or_none()
        if inserted is None:
            await self.session.rollback()
            existing = await self.session.scalar(
                select(Conversation.id).where(Conversation.direct_key == values["direct_key"])
            )
            if existing is None:
                raise AppError(ErrorCode.CONFLICT, "The conversation changed meanwhile; try again")
            return Created(await self._load(existing), created=False)
        rows = [{"conversation_id": conversation_id, "user_id": creator, "role": "owner"}]
        rows += [{"conversation_id": conversation_id, "user_id": uid, "role": "member"} for uid in others]
        await self.session.execute(
            self._insert(Participant).values([{"id": uuid.uuid4(), **row} for row in rows])
        )
        await self.session.commit()
        conversation = await self._load(conversation_id)
        await events.conversation_created(conversation)
        return Created(conversation, created=True)

    async def _manage(self, conversation_id: uuid.UUID, actor: uuid.UUID) -> tuple[Conversation, Participant]:
        """Access for changes to a group: owner or admin only."""
        conversation, participant = await self._access(conversation_id, actor)
        if conversation.kind != "group":
            raise forbidden("A direct conversation cannot be changed")
        if participant.role not in MANAGERS:
            raise forbidden("Only the owner or an admin may do that")
        return conversation, participant

    async def rename(
        self, actor: uuid.UUID, conversation_id: uuid.UUID, title: str, *, events: ChatEvents
    ) -> ConversationOut:
        if not title.strip():
            raise validation_error("title", "must not be only whitespace")
        await self._manage(conversation_id, actor)
        await self.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(title=title, updated_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        await self.session.commit()
        conversation = await self._load(conversation_id)
        await events.conversation_updated(conversation)
        return conversation

    async def delete_conversation(
        self, actor: uuid.UUID, conversation_id: uuid.UUID, *, events: ChatEvents
    ) -> None:
        _, participant = await self._access(conversation_id, actor)
        if participant.role != "owner":
            raise forbidden("Only the owner may delete the conversation")
        members = await self.session.execute(
            delete(Participant)
            .where(Participant.conversation_id == conversation_id)
            .returning(Participant.user_id)
        )
        member_ids = [str(user_id) for user_id in members.scalars()]
        await self.session.execute(delete(Conversation).where(Conversation.id == conversation_id))
        await self.session.commit()
        await events.conversation_deleted(str(conversation_id), member_ids)

    async def add_participants(
        self,
        actor: uuid.UUID,
        conversation_id: uuid.UUID,
        user_ids: Sequence[uuid.UUID],
        *,
        events: ChatEvents,
    ) -> ConversationOut:
        """Add users as members; they start with nothing unread. Users already in are left alone."""
        await self._manage(conversation_id, actor)
        wanted = list(dict.fromkeys(user_ids))
        await self._existing_users(wanted, "user_ids")
        current = select(Conversation.last_seq).where(Conversation.id == conversation_id).scalar_subquery()
        statement = (
            self._insert(Participant)
            .values(
                [
                    {
                        "id": uuid.uuid4(),
                        "conversation_id": conversation_id,
                        "user_id": uid,
                        "role": "member",
                        "last_read_seq": current,
                    }
                    for uid in wanted
                ]
            )
            .on_conflict_do_nothing(index_elements=["conversation_id", "user_id"])
            .returning(Participant.user_id)
        )
        added = [str(uid) for uid in (await self.session.execute(statement)).scalars()]
        await self.session.commit()
        await events.participants_added(str(conversation_id), added, by=str(actor))
        return await self._load(conversation_id)

    async def leave(
        self, member: Identity, conversation_id: uuid.UUID, *, writer: MessageWriter, events: ChatEvents
    ) -> Removal:
        """The caller leaves: three statements in one transaction, then the events."""
        user_id = member.user_id
        notice = f"{member.display_name} left"
        return await self._remove(conversation_id, user_id, notice, user_id, writer=writer, events=events)

    async def remove_participant(
        self,
        actor: uuid.UUID,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        writer: MessageWriter,
        events: ChatEvents,
    ) -> Removal:
        """Remove someone: anyone may remove themselves; the owner anyone; an admin members only."""
        conversation, participant = await self._access(conversation_id, actor)
        target = await self.session.scalar(
            select(Participant.role).where(
                Participant.conversation_id == conversation_id, Participant.user_id == user_id
            )
        )
        if target is None:
            raise not_found("Participant")
        if user_id != actor:
            allowed = participant.role == "owner" or (participant.role == "admin" and target == "member")
            if conversation.kind != "group" or not allowed:
                raise forbidden("You may not remove that participant")
        name = await self.session.scalar(select(USERS.c.display_name).where(USERS.c.id == user_id))
        verb = "left" if user_id == actor else "was removed"
        notice = f"{name} {verb}"
        return await self._remove(conversation_id, user_id, notice, actor, writer=writer, events=events)

    async def _remove(
        self,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        notice: str,
        actor: uuid.UUID,
        *,
        writer: MessageWriter,
        events: ChatEvents,
    ) -> Removal:
        """The participant row goes and `notice` is stored with the next seq, in one transaction of the
        message writer (so it takes its place among the messages sent around it); then the events."""
        await self.session.rollback()  # this session's reads end here: the writer's transaction follows
        removed = await writer.run_alone(partial(self._remove_on, conversation_id, user_id, notice))
        if removed is None:
            conversation = await self._recheck_access(conversation_id, user_id)
            if conversation.kind == "direct":
                raise forbidden("A direct conversation cannot be left")
            raise AppError(ErrorCode.CONFLICT, "The participants changed meanwhile; try again")
        message, new_owner = removed
        removal = Removal(str(conversation_id), str(user_id), str(actor), message, new_owner)
        await events.participant_removed(removal)
        return removal

    async def _remove_on(
        self,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        notice: str,
        connection: AsyncConnection,
        attempt: Attempt,
    ) -> tuple[MessageOut, str | None] | None:
        """On the writer's connection, three statements: delete a group's participant row, take the
        next seq, store `notice`. None, with nothing changed, if there was no such row."""
        async with AsyncSession(bind=connection, expire_on_commit=False) as session:
            store = type(self)(session=session)
            group_only = select(Conversation.id).where(Conversation.kind == "group")
            removed = (
                await session.execute(
                    delete(Participant)
                    .where(
                        Participant.conversation_id == conversation_id,
                        Participant.user_id == user_id,
                        Participant.conversation_id.in_(group_only),
                    )
                    .returning(Participant.role, _successor(conversation_id, user_id))
                )
            ).one_or_none()
            seq = None if removed is None else await store._next_seq(conversation_id)
            if removed is None or seq is None:
                await session.rollback()
                return None
            row = await store._insert_message(
                {
                    "id": uuid.uuid4(),
                    "conversation_id": conversation_id,
                    "seq": seq,
                    "sender_id": user_id,
                    "kind": "system",
                    "body": notice,
                    "client_msg_id": None,
                }
            )
            attempt.committing = True
            await session.commit()
        new_owner = str(removed[1]) if removed[0] == "owner" and removed[1] is not None else None
        return message_out(row), new_owner

    async def set_muted(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, muted: bool, *, events: ChatEvents
    ) -> MuteOut:
        """Mute or unmute a conversation for the caller; two statements (three if refused)."""
        statement = (
            update(Participant)
            .where(Participant.conversation_id == conversation_id, Participant.user_id == user_id)
            .values(muted_at=utc_now() if muted else None)
            .returning(Participant.id)
            .execution_options(synchronize_session=False)
        )
        if (await self.session.execute(statement)).scalar_one_or_none() is None:
            await self._recheck_access(conversation_id, user_id)
            raise AppError(ErrorCode.CONFLICT, "Your membership changed meanwhile; try again")
        unread, total = await self._unread_totals(user_id, conversation_id)
        await self.session.commit()
        mute = MuteOut(str(conversation_id), muted)
        await events.mute_changed(str(user_id), mute, UnreadUpdate(mute.conversation_id, unread, total))
        return mute


def _successor(conversation_id: uuid.UUID, leaver: uuid.UUID) -> Any:
    """Who owns the group once `leaver` goes, if `leaver` was the owner: the rule of the database
    trigger of migration 0005 (longest-standing admin, else member), seen from the DELETE's RETURNING.

    An owner sorts first, so the answer is the same whether the trigger already ran or not.
    """
    other = aliased(Participant)
    rank = case((other.role == "owner", 0), (other.role == "admin", 1), else_=2)
    return (
        select(other.user_id)
        .where(other.conversation_id == conversation_id, other.user_id != leaver)
        .order_by(rank, other.joined_at, other.id)
        .limit(1)
        .scalar_subquery()
    )
