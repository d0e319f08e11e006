"""The batch's hot statements on PostgreSQL, run on asyncpg's connection itself.

The same three statements as `CoreStatements` (the seqs, the messages, the mentions), each written once
with its rows as arrays (`unnest`), so that each is one prepared statement whatever the batch holds:
no SQL is built or compiled per batch, and no call goes through SQLAlchemy's bridge from asyncio. The
transaction is asyncpg's too. A failure is raised as SQLAlchemy's `DBAPIError` around the driver's
(the connection invalidated when it is closed or out of step), so that the writer tells a dead
connection, a lost race and a bug apart as it does on every backend.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

import asyncpg
import asyncpg.transaction
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from app.modules.chat.statements import Draft, DriverStatements, MentionSource, NewMessage

TAKE_SEQS = """UPDATE conversations
SET last_seq = conversations.last_seq + batch.n, updated_at = statement_timestamp()
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS batch(id, n, senders)
WHERE conversations.id = batch.id
AND conversations.id IN (
    SELECT locked.id FROM conversations AS locked WHERE locked.id = ANY($1::uuid[])
    ORDER BY locked.id FOR UPDATE
)
AND batch.senders = (
    SELECT count(*) FROM (
        SELECT participant.user_id FROM conversation_participants AS participant
        WHERE participant.conversation_id = batch.id
        AND participant.user_id IN (
            SELECT sender.user_id FROM unnest($4::uuid[], $5::uuid[]) AS sender(conversation_id, user_id)
            WHERE sender.conversation_id = batch.id
        )
        FOR KEY SHARE
    ) AS participating
)
RETURNING conversations.id, conversations.last_seq"""
"""Each conversation `$1` advanced by `$2` if all its `$3` senders (the pairs `$4`, `$5`) participate.
Locks as `CoreStatements.take_seqs` does: the conversations in id order, the senders' rows KEY SHARE."""

INSERT_MESSAGES = """INSERT INTO messages (id, conversation_id, seq, sender_id, kind, body, client_msg_id)
SELECT id, conversation_id, seq, sender_id, 'text', body, client_msg_id
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[], $5::text[], $6::text[])
    AS batch(id, conversation_id, seq, sender_id, body, client_msg_id)
ON CONFLICT (conversation_id, sender_id, client_msg_id) DO UPDATE SET client_msg_id = excluded.client_msg_id
RETURNING id, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at"""
"""As `UPSERT_MESSAGE`: a `client_msg_id` stored earlier returns the stored message."""

NOTIFY_MENTIONS = """INSERT INTO notifications
    (id, user_id, kind, title, body, data, conversation_id, message_id)
SELECT mention.id, participant.user_id, mention.kind, mention.title, mention.body, mention.data::json,
    mention.conversation_id, mention.message_id
FROM unnest(
    $1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[], $8::uuid[], $9::uuid[]
) AS mention(id, username, kind, title, body, data, conversation_id, message_id, sender_id)
JOIN conversation_participants AS participant ON participant.conversation_id = mention.conversation_id
JOIN users ON users.id = participant.user_id
WHERE lower(users.username) = mention.username
AND participant.user_id <> mention.sender_id
AND participant.muted_at IS NULL
RETURNING id, user_id, created_at"""
"""One row per mentioned name of each message; a name that is no unmuted participant but the sender
makes none."""

STORE_AT_ONCE = """WITH batch AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[]) WITH ORDINALITY
        AS batch(id, conversation_id, sender_id, body, client_msg_id, place)
), earlier AS (
    SELECT batch.id AS draft_id, found.*
    FROM batch CROSS JOIN LATERAL (
        SELECT messages.id, messages.conversation_id, messages.seq, messages.sender_id, messages.kind,
            messages.body, messages.client_msg_id, messages.created_at
        FROM messages
        WHERE messages.conversation_id = batch.conversation_id AND messages.sender_id = batch.sender_id
        AND messages.client_msg_id = batch.client_msg_id
        LIMIT 1
    ) AS found
), wanted AS (
    SELECT batch.conversation_id AS id, count(*) FILTER (WHERE earlier.draft_id IS NULL) AS n,
        array_agg(DISTINCT batch.sender_id) AS senders
    FROM batch LEFT JOIN earlier ON earlier.draft_id = batch.id
    GROUP BY batch.conversation_id
), seqs AS (
    UPDATE conversations
    SET last_seq = conversations.last_seq + wanted.n,
        updated_at = CASE WHEN wanted.n > 0 THEN statement_timestamp() ELSE conversations.updated_at END
    FROM wanted
    WHERE conversations.id = wanted.id
    AND conversations.id IN (
        SELECT locked.id FROM conversations AS locked WHERE locked.id IN (SELECT wanted.id FROM wanted)
        ORDER BY locked.id FOR UPDATE
    )
    AND cardinality(wanted.senders) = (
        SELECT count(*) FROM (
            SELECT participant.user_id FROM conversation_participants AS participant
            WHERE participant.conversation_id = wanted.id AND participant.user_id = ANY(wanted.senders)
            FOR KEY SHARE
        ) AS participating
    )
    RETURNING conversations.id, conversations.last_seq - wanted.n AS before
), stored AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, kind, body, client_msg_id)
    SELECT batch.id, batch.conversation_id,
        seqs.before + row_number() OVER (PARTITION BY batch.conversation_id ORDER BY batch.place),
        batch.sender_id, 'text', batch.body, batch.client_msg_id
    FROM batch LEFT JOIN seqs ON seqs.id = batch.conversation_id
    WHERE seqs.id IS NULL OR NOT EXISTS (SELECT FROM earlier WHERE earlier.draft_id = batch.id)
    RETURNING id, conversation_id, seq, sender_id, kind, body, client_msg_id, created_at
), notified AS (
    INSERT INTO notifications (id, user_id, kind, title, body, data, conversation_id, message_id)
    SELECT mention.id, participant.user_id, 'mention', mention.title, mention.body,
        json_build_object(
            'conversation_id', stored.conversation_id, 'message_id', stored.id, 'seq', stored.seq
        ),
        stored.conversation_id, stored.id
    FROM unnest($6::uuid[], $7::text[], $8::text[], $9::text[], $10::uuid[])
        AS mention(id, username, title, body, message_id)
    JOIN stored ON stored.id = mention.message_id
    JOIN conversation_participants AS participant ON participant.conversation_id = stored.conversation_id
    JOIN users ON users.id = participant.user_id
    WHERE lower(users.username) = mention.username
    AND participant.user_id <> stored.sender_id
    AND participant.muted_at IS NULL
    RETURNING id, user_id, created_at, message_id
)
SELECT NULL::uuid AS draft_id, stored.*, mentioned.ids, mentioned.users, mentioned.times
FROM stored LEFT JOIN LATERAL (
    SELECT array_agg(notified.id) AS ids, array_agg(notified.user_id) AS users,
        array_agg(notified.created_at) AS times
    FROM notified WHERE notified.message_id = stored.id
) AS mentioned ON true
UNION ALL
SELECT earlier.*, NULL, NULL, NULL FROM earlier"""
"""A batch of text messages, written whole in one statement or not at all: as `TAKE_SEQS`,
`INSERT_MESSAGES` and `NOTIFY_MENTIONS` together, committed on its own (no BEGIN, no COMMIT).

The seqs are taken for the messages not stored earlier (`earlier`: a `client_msg_id` already stored,
returned with the draft's id first; looked up one draft at a time, which keeps the plan on the unique
index even when it was made while `messages` was empty, see `WRITER_SETTINGS`), checking every sender
of the batch as `TAKE_SEQS` does. A conversation refused (a sender who is not a participant) gets no
seqs, and its messages are then inserted without one: the NOT NULL of `messages.seq` fails the
statement, which stores nothing. So does a `client_msg_id` that another node stored after the
statement's snapshot (the unique index). Rows: the draft's id (NULL for a message stored now),
`INSERT_MESSAGES`' columns, then the ids, users and times of the message's mention notifications
(NULL when there are none)."""


WRITER_SETTINGS = "SET client_connection_check_interval = '100ms'; SET plan_cache_mode = force_generic_plan"
"""The writer's connection: PostgreSQL ends a statement whose client has gone (a connection cut while
it waits for a lock) within 100 ms, rather than carrying it out and committing it unseen, since the
writer has answered its messages UNAVAILABLE by then. And the statements are planned once: left to
choose, PostgreSQL plans `STORE_AT_ONCE` anew at every batch (its generic plan's estimate is higher
than a custom plan's), which took 2 to 3 ms of its 3 to 4 (1.3 ms with the plan kept)."""


class PgStatements(DriverStatements):
    """`CoreStatements` with the transaction and the hot statements on asyncpg's `driver` connection."""

    driver: asyncpg.Connection

    @classmethod
    async def on(cls, connection: AsyncConnection) -> Self:
        """The statements on `connection`'s driver connection, with every statement's types known to
        asyncpg already: the first batch that needs one does not wait for its type introspection."""
        statements = await super().on(connection)
        async with statements._translated(WRITER_SETTINGS):
            await statements.driver.execute(WRITER_SETTINGS)
        for sql in (STORE_AT_ONCE, TAKE_SEQS, INSERT_MESSAGES, NOTIFY_MENTIONS):
            async with statements._translated(sql):
                await statements.driver.prepare(sql)
        return statements

    def __init__(self, connection: AsyncConnection, driver: asyncpg.Connection) -> None:
        super().__init__(connection, driver)
        self._driver_transaction: asyncpg.transaction.Transaction | None = None

    async def _start(self) -> None:
        transaction = self.driver.transaction()
        await transaction.start()
        self._driver_transaction = transaction

    async def _end(self, *, commit: bool) -> None:
        transaction, self._driver_transaction = self._driver_transaction, None
        if transaction is not None:
            await (transaction.commit() if commit else transaction.rollback())

    async def take_seqs(
        self, counts: dict[uuid.UUID, int], senders: dict[uuid.UUID, set[uuid.UUID]]
    ) -> dict[uuid.UUID, int]:
        pairs = [(cid, uid) for cid, uids in senders.items() for uid in uids]
        rows = await self._fetch(
            TAKE_SEQS,
            list(counts),
            list(counts.values()),
            [len(senders[cid]) for cid in counts],
            [cid for cid, _ in pairs],
            [uid for _, uid in pairs],
        )
        return {row[0]: row[1] for row in rows}

    async def insert(self, messages: Sequence[NewMessage]) -> Iterable[Sequence[Any]]:
        return await self._fetch(
            INSERT_MESSAGES,
            [message.id for message in messages],
            [message.conversation_id for message in messages],
            [message.seq for message in messages],
            [message.sender_id for message in messages],
            [message.body for message in messages],
            [message.client_msg_id for message in messages],
        )

    async def notify(self, sources: Sequence[MentionSource]) -> Iterable[Sequence[Any]]:
        rows = [(source, name, nid) for source in sources for name, nid in source.ids.items()]
        return await self._fetch(
            NOTIFY_MENTIONS,
            [nid for _, _, nid in rows],
            [name for _, name, _ in rows],
            [source.notice.kind for source, _, _ in rows],
            [source.notice.title for source, _, _ in rows],
            [source.notice.body for source, _, _ in rows],
            [json.dumps(source.notice.data) for source, _, _ in rows],
            [source.conversation_id for source, _, _ in rows],
            [source.message_id for source, _, _ in rows],
            [source.sender_id for source, _, _ in rows],
        )

    async def store_at_once(
        self, drafts: Sequence[Draft], mentions: Sequence[MentionSource]
    ) -> Iterable[Sequence[Any]] | None:
        asked = [(source, name, nid) for source in mentions for name, nid in source.ids.items()]
        try:
            return await self._fetch(
                STORE_AT_ONCE,
                [draft.id for draft in drafts],
                [draft.conversation_id for draft in drafts],
                [draft.sender_id for draft in drafts],
                [draft.body for draft in drafts],
                [draft.client_msg_id for draft in drafts],
                [nid for _, _, nid in asked],
                [name for _, name, _ in asked],
                [source.notice.title for source, _, _ in asked],
                [source.notice.body for source, _, _ in asked],
                [source.message_id for source, _, _ in asked],
            )
        except DBAPIError as exc:
            if isinstance(exc.orig, asyncpg.IntegrityConstraintViolationError):
                return None
            raise

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of `sql`, prepared once on the connection (asyncpg's statement cache)."""
        async with self._translated(sql):
            rows: list[asyncpg.Record] = await self.driver.fetch(sql, *args)
        return rows

    @asynccontextmanager
    async def _translated(self, sql: str) -> AsyncIterator[None]:
        try:
            yield
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
            # An internal client error is the protocol out of step with the server (the end of a
            # connection that the server terminated, arriving while a statement is being sent).
            dead = self.driver.is_closed() or isinstance(exc, asyncpg.InternalClientError)
            raise DBAPIError(sql, None, exc, connection_invalidated=dead) from exc
