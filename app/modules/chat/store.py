"""The chat's storage base: the session, access checks, seqs and message rows shared by every part."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import and_, bindparam, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.driver_reads import DriverReads
from app.core.errors import forbidden, not_found
from app.modules.chat.models import Conversation, Participant
from app.modules.chat.rows import TAKE_SEQ, UPSERT_MESSAGE, conversation_out
from app.modules.chat.schemas import ConversationOut


class ChatStore(SQLAlchemyAsyncRepositoryService[Conversation]):
    class Repo(SQLAlchemyAsyncRepository[Conversation]):
        model_type = Conversation

    repository_type = Repo

    @property
    def session(self) -> AsyncSession:
        session: AsyncSession = self.repository.session
        return session

    @property
    def _dialect(self) -> str:
        bind = self.session.bind
        return bind.dialect.name if bind is not None else "sqlite"

    def _insert(self, model: type[Any]) -> Any:
        return pg_insert(model) if self._dialect == "postgresql" else sqlite_insert(model)

    # -- access ---------------------------------------------------------------------------------

    async def _access(
        self, conversation_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Conversation, Participant]:
        """The conversation and the caller's participation: NOT_FOUND, or FORBIDDEN for outsiders."""
        statement = (
            select(Conversation, Participant)
            .outerjoin(
                Participant,
                and_(Participant.conversation_id == Conversation.id, Participant.user_id == user_id),
            )
            .where(Conversation.id == conversation_id)
        )
        row = (await self.session.execute(statement)).one_or_none()
        if row is None:
            raise not_found("Conversation")
        if row[1] is None:
            raise forbidden("You are not a participant of this conversation")
        return row[0], row[1]

    async def _recheck_access(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> Conversation:
        """After a guarded write touched nothing: raise why, asked in a fresh transaction.

        Returns the conversation when access is fine after all (it changed in between).
        """
        await self.session.rollback()
        conversation, _ = await self._access(conversation_id, user_id)
        return conversation

    async def is_participant(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        statement = select(
            exists().where(Participant.conversation_id == conversation_id, Participant.user_id == user_id)
        )
        return bool((await self.session.execute(statement)).scalar())

    async def require_participant(self, conversation_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self._access(conversation_id, user_id)

    async def recent_conversation_ids(self, user_id: uuid.UUID, window: int) -> list[uuid.UUID]:
        return await recent_conversation_ids(self.session, user_id, window)

    async def contacts_among(self, user_id: uuid.UUID, candidates: Sequence[uuid.UUID]) -> set[str]:
        mine = select(Participant.conversation_id).where(Participant.user_id == user_id)
        statement = (
            select(Participant.user_id)
            .where(Participant.conversation_id.in_(mine), Participant.user_id.in_(candidates))
            .distinct()
        )
        return {str(uid) for uid in (await self.session.execute(statement)).scalars()}

    async def _next_seq(self, conversation_id: uuid.UUID) -> int | None:
        """Take the conversation's next seq (row-locked until commit); None if it does not exist."""
        result = await self.session.execute(TAKE_SEQ, {"conversation_id": conversation_id})
        seq: int | None = result.scalar_one_or_none()
        return seq

    async def _insert_message(self, values: dict[str, Any]) -> Any:
        """Insert a message, or return the one already stored under its (conversation, sender, client id)."""
        return (await self.session.execute(UPSERT_MESSAGE[self._dialect], values)).one()

    async def _participants(
        self, conversation_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[Participant]]:
        statement = (
            select(Participant)
            .where(Participant.conversation_id.in_(conversation_ids))
            .order_by(Participant.joined_at, Participant.user_id)
        )
        grouped: dict[uuid.UUID, list[Participant]] = {cid: [] for cid in conversation_ids}
        for participant in (await self.session.execute(statement)).scalars():
            grouped[participant.conversation_id].append(participant)
        return grouped

    async def _load(self, conversation_id: uuid.UUID) -> ConversationOut:
        conversation = await self.session.get(Conversation, conversation_id, populate_existing=True)
        if conversation is None:
            raise not_found("Conversation")
        participants = await self._participants([conversation_id])
        return conversation_out(conversation, participants[conversation_id])

    async def conversation(self, user_id: uuid.UUID, conversation_id: uuid.UUID) -> ConversationOut:
        await self._access(conversation_id, user_id)
        return await self._load(conversation_id)


async def recent_conversation_ids(session: AsyncSession, user_id: uuid.UUID, window: int) -> list[uuid.UUID]:
    """The `window` most recently active conversations of the user that are not muted. A function of
    the session, so that a socket connect runs it without building a service; run on the session's
    connection, as the ORM has nothing to load here and its execution path cost as much again."""
    connection = await session.connection()
    return list((await connection.execute(_recent_statement(window), {"user_id": user_id})).scalars())


async def connect_conversation_ids(reads: DriverReads, user_id: uuid.UUID, window: int) -> list[uuid.UUID]:
    """`recent_conversation_ids` for a socket connect: its one statement on the driver's connection,
    with no session nor transaction around it."""
    return [row[0] for row in await reads.rows(_recent_statement(window), {"user_id": user_id})]


@functools.cache
def _recent_statement(window: int) -> Any:
    """`recent_conversation_ids` of the user `:user_id`, built once per window size: every socket
    connect runs it, and building it anew cost about as much as running it."""
    user_id = bindparam("user_id", type_=Participant.__table__.c.user_id.type)
    return (
        select(Participant.conversation_id)
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .where(Participant.user_id == user_id, Participant.muted_at.is_(None))
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(window)
    )
