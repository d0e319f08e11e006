"""The statements of a batch of messages (see `BatchWrite`), run through SQLAlchemy Core.

`CoreStatements` serves every backend; the writer runs the batch on the driver's connection instead:
on PostgreSQL with statements of the same meaning written for arrays (`pg_statements`), on SQLite with
these very statements, compiled once (`sqlite_statements`).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Self, cast

from advanced_alchemy.types import GUID
from sqlalchemy import (
    JSON,
    BigInteger,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from app.core.db import utc_now
from app.core.ids import random_ids
from app.modules.chat.models import Notification
from app.modules.chat.rows import CONVERSATIONS, PARTICIPANTS, UPSERT_MESSAGE, USERS
from app.modules.chat.schemas import NotificationOut

SHAPES_KEPT = 512
"""Seq statements kept built, one per shape of batch (how many senders in each of its conversations)."""

MessageKey = tuple[uuid.UUID, uuid.UUID | None, str | None]
"""A message's idempotency key: (conversation, sender, `client_msg_id`)."""


@dataclass(slots=True)
class Draft:
    """A participant's text message to store, idempotent by `client_msg_id`."""

    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    body: str
    client_msg_id: str
    sender_name: str
    id: uuid.UUID = field(default_factory=random_ids.next)

    @property
    def key(self) -> MessageKey:
        """The message's idempotency key, as the unique index of `messages` has it."""
        return (self.conversation_id, self.sender_id, self.client_msg_id)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A row of `messages` to insert: a participant's text message with its seq."""

    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    body: str
    client_msg_id: str


@dataclass(frozen=True, slots=True)
class MentionSource:
    """The notifications of one message: `ids` by mentioned username (lower-cased), for those of them who
    are participants of the conversation, other than the sender, who have not muted it."""

    conversation_id: uuid.UUID
    message_id: uuid.UUID
    sender_id: uuid.UUID
    notice: NotificationOut
    ids: dict[str, uuid.UUID]


class CoreStatements:
    """A batch's transaction and statements on `connection`, built with SQLAlchemy Core."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        self._transaction: AsyncTransaction | None = None
        self._seq_statements: dict[tuple[int, ...], Any] = {}

    async def begin(self) -> None:
        self._transaction = await self.connection.begin()

    async def commit(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            await transaction.commit()

    async def rollback(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None and transaction.is_active:
            await transaction.rollback()

    async def take_seqs(
        self, counts: dict[uuid.UUID, int], senders: dict[uuid.UUID, set[uuid.UUID]]
    ) -> dict[uuid.UUID, int]:
        """Each conversation's new `last_seq`, advanced by its count; a conversation with a sender who is
        not a participant (or that does not exist) is left alone and not returned.

        The statement has one shape per number of senders in each conversation and is built once per
        shape, so that SQLAlchemy finds it compiled; the ids come as parameters."""
        statement, params = self.seq_statement(counts, senders)
        return {row.id: row.last_seq for row in await self.connection.execute(statement, params)}

    def seq_statement(
        self, counts: dict[uuid.UUID, int], senders: dict[uuid.UUID, set[uuid.UUID]]
    ) -> tuple[Any, dict[str, Any]]:
        """`take_seqs`' statement for this shape of batch, and its parameters."""
        conversations = list(counts)
        shape = tuple(len(senders[cid]) for cid in conversations)
        statement = self._seq_statements.get(shape)
        if statement is None:
            if len(self._seq_statements) >= SHAPES_KEPT:
                self._seq_statements.clear()
            statement = self._seq_statements[shape] = _take_seqs_statement(shape)
        params: dict[str, Any] = {}
        for index, cid in enumerate(conversations):
            params[f"c{index}"] = cid
            params[f"n{index}"] = counts[cid]
            for rank, uid in enumerate(senders[cid]):
                params[f"s{index}_{rank}"] = uid
        return statement, params

    async def insert(self, messages: Sequence[NewMessage]) -> Iterable[Sequence[Any]]:
        """Insert the messages; on a `client_msg_id` stored earlier, return the stored message instead.
        Rows in `MESSAGE_COLUMNS` order."""
        values = [message_values(message) for message in messages]
        # One statement built once, given every row: SQLAlchemy sends it as one multi-row INSERT
        # ("insertmanyvalues") from its compiled cache; `.values([...])` was compiled anew each time.
        return list(await self.connection.execute(UPSERT_MESSAGE[self.dialect], values))

    async def notify(self, sources: Sequence[MentionSource]) -> Iterable[Sequence[Any]]:
        """One INSERT … SELECT for every mention of the batch: rows of (id, user_id, created_at)."""
        return list(await self.connection.execute(self.notify_statement(sources)))

    def notify_statement(self, sources: Sequence[MentionSource]) -> Any:
        """`notify`'s statement: the notification rows of each message, in one INSERT … SELECT."""
        insert_into = pg_insert if self.dialect == "postgresql" else sqlite_insert
        columns = ["id", "user_id", "kind", "title", "body", "data", "conversation_id", "message_id"]
        selects = [_mention_select(source) for source in sources]
        return (
            insert_into(Notification)
            .from_select(columns, selects[0] if len(selects) == 1 else union_all(*selects))
            .returning(Notification.id, Notification.user_id, Notification.created_at)
        )

    async def store_at_once(
        self, drafts: Sequence[Draft], mentions: Sequence[MentionSource]
    ) -> Iterable[Sequence[Any]] | None:
        """The batch's messages and their `mentions` stored at once, committed (PostgreSQL's one
        statement, SQLite's one hand-over), or None, with nothing stored, where the backend has no such
        way (SQLAlchemy Core) or leaves the batch to the transaction."""
        del drafts, mentions
        return None

    async def participating(
        self, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
    ) -> set[tuple[uuid.UUID, uuid.UUID]]:
        """Which (conversation, user) pairs are participants, asked in a transaction of its own."""
        columns = PARTICIPANTS.c.conversation_id, PARTICIPANTS.c.user_id
        asked = or_(*(and_(columns[0] == cid, columns[1] == uid) for cid, uid in pairs))
        async with self.connection.begin():
            rows = await self.connection.execute(select(*columns).where(asked))
            return {(row.conversation_id, row.user_id) for row in rows}


class DriverStatements(CoreStatements, ABC):
    """`CoreStatements` with the transaction on the driver's own `driver` connection, under
    SQLAlchemy's; a subclass says how to start and end it (`_start`, `_end`), which SQL that is
    (`BEGIN`), and how the driver's errors become SQLAlchemy's (`_translated`)."""

    BEGIN = "BEGIN"

    def __init__(self, connection: AsyncConnection, driver: Any) -> None:
        super().__init__(connection)
        self.driver = driver
        self._active = False

    @classmethod
    async def on(cls, connection: AsyncConnection) -> Self:
        """The statements on `connection`'s driver connection."""
        raw = await connection.get_raw_connection()
        return cls(connection, cast("Any", raw.driver_connection))

    async def begin(self) -> None:
        async with self._translated(self.BEGIN):
            await self._start()
        self._active = True

    async def commit(self) -> None:
        await self._finish(commit=True)

    async def rollback(self) -> None:
        await self._finish(commit=False)

    async def _finish(self, *, commit: bool) -> None:
        """End the transaction if one is open (a second rollback, or one after a failed BEGIN, is none)."""
        if self._active:
            self._active = False
            async with self._translated("COMMIT" if commit else "ROLLBACK"):
                await self._end(commit=commit)

    @abstractmethod
    async def _start(self) -> None: ...

    @abstractmethod
    async def _end(self, *, commit: bool) -> None: ...

    @abstractmethod
    def _translated(self, sql: str) -> AbstractAsyncContextManager[None]: ...


def seqs_wanted(drafts: Sequence[Draft]) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, set[uuid.UUID]]]:
    """What `take_seqs` is asked for the drafts: how many seqs each conversation needs, and its senders."""
    senders: dict[uuid.UUID, set[uuid.UUID]] = {}
    for draft in drafts:
        senders.setdefault(draft.conversation_id, set()).add(draft.sender_id)
    return dict(Counter(draft.conversation_id for draft in drafts)), senders


def numbered(drafts: Sequence[Draft], last_seqs: dict[uuid.UUID, int]) -> list[NewMessage]:
    """The drafts as rows with their seqs: each conversation's range ends at its new `last_seq`, in the
    drafts' order."""
    counts = Counter(draft.conversation_id for draft in drafts)
    next_seq = {cid: last_seqs[cid] - n + 1 for cid, n in counts.items()}
    rows = []
    for draft in drafts:
        seq = next_seq[draft.conversation_id]
        next_seq[draft.conversation_id] = seq + 1
        rows.append(
            NewMessage(draft.id, draft.conversation_id, seq, draft.sender_id, draft.body, draft.client_msg_id)
        )
    return rows


def message_values(message: NewMessage) -> dict[str, Any]:
    """The values of a text message's row of `messages`."""
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "kind": "text",
        "body": message.body,
        "client_msg_id": message.client_msg_id,
    }


def _take_seqs_statement(shape: tuple[int, ...]) -> Any:
    """`UPDATE … RETURNING` of the conversations `c0…`, each advanced by `n0…` if all its senders
    `s0_0…` participate, locking the conversations in id order (batches on several nodes never
    deadlock)."""
    ids = CONVERSATIONS.c.id
    conversations = [bindparam(f"c{index}", type_=GUID(length=16)) for index in range(len(shape))]
    in_order = select(ids).where(ids.in_(conversations)).order_by(ids).with_for_update()
    guards = [
        _all_participate(
            conversation, [bindparam(f"s{index}_{rank}", type_=GUID(length=16)) for rank in range(n)]
        )
        for index, (conversation, n) in enumerate(zip(conversations, shape, strict=True))
    ]
    steps = [
        (ids == conversation, bindparam(f"n{index}", type_=BigInteger()))
        for index, conversation in enumerate(conversations)
    ]
    return (
        update(CONVERSATIONS)
        .where(ids.in_(in_order), or_(*guards))
        .values(last_seq=CONVERSATIONS.c.last_seq + case(*steps), updated_at=utc_now())
        .returning(ids, CONVERSATIONS.c.last_seq)
    )


def _all_participate(conversation: Any, senders: list[Any]) -> Any:
    """The conversation's row, if every one of `senders` is a participant of it.

    The senders' participant rows are read with `FOR KEY SHARE`: a plain read would see them as the
    statement's snapshot has them, so a removal that committed while the batch waited for the
    conversation's row would still count its sender. A locked read waits for the removal and skips a
    row it deleted. KEY SHARE does not conflict with the updates of `last_read_seq` that other batches
    make, only with the removal of the row."""
    locked = (
        select(PARTICIPANTS.c.user_id)
        .where(PARTICIPANTS.c.conversation_id == conversation, PARTICIPANTS.c.user_id.in_(senders))
        .with_for_update(read=True, key_share=True)
        .subquery()
    )
    participating = select(func.count()).select_from(locked).scalar_subquery()
    return and_(CONVERSATIONS.c.id == conversation, participating == len(senders))


def _mention_select(source: MentionSource) -> Any:
    """The notification rows of one message: its mentioned, unmuted participants but the sender."""
    username = func.lower(USERS.c.username)
    notice = source.notice
    return (
        select(
            case({name: literal(nid, GUID(length=16)) for name, nid in source.ids.items()}, value=username),
            PARTICIPANTS.c.user_id,
            literal(notice.kind, String()),
            literal(notice.title, String()),
            literal(notice.body, String()),
            literal(notice.data, JSON()),
            literal(source.conversation_id, GUID(length=16)),
            literal(source.message_id, GUID(length=16)),
        )
        .join_from(PARTICIPANTS, USERS, USERS.c.id == PARTICIPANTS.c.user_id)
        .where(
            PARTICIPANTS.c.conversation_id == source.conversation_id,
            PARTICIPANTS.c.user_id != source.sender_id,
            PARTICIPANTS.c.muted_at.is_(None),
            username.in_([literal(name, String()) for name in source.ids]),
        )
    )
