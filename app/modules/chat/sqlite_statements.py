"""The batch's statements on SQLite, run on aiosqlite's connection itself.

The statements are `CoreStatements`' own, each compiled once (the multi-row insert once per number of
rows). A batch without mentions is written in one hand-over to aiosqlite's thread (`store_at_once`):
there the transaction begins, takes the seqs, inserts the messages and commits, so the event loop
waits once per batch where the transaction way waits four times (BEGIN, the seqs, the insert,
COMMIT); an attempt that meets a `client_msg_id` stored earlier is rolled back and the rest written
in one more. Otherwise each statement is one hand-over (`execute_fetchall`), where
SQLAlchemy's adapter makes four (cursor, execute, fetch, close), each through its bridge from asyncio.
The values go in and come out through the columns' own SQLAlchemy types (UUIDs as 16 bytes, times as
text), so the rows are the ones SQLAlchemy would give. A failure is raised as SQLAlchemy's `DBAPIError`
around sqlite3's, as SQLAlchemy raises it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

import aiosqlite
from sqlalchemy import bindparam
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from app.modules.chat.rows import MESSAGE_COLUMNS, MESSAGES, message_upsert
from app.modules.chat.statements import (
    SHAPES_KEPT,
    Draft,
    DriverStatements,
    MentionSource,
    NewMessage,
    message_values,
    numbered,
    seqs_wanted,
)

Processor = Callable[[Any], Any] | None
T = TypeVar("T")
Row = tuple[Any, ...]


async def in_thread(driver: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work(connection)` in aiosqlite's thread, on its sqlite3 connection, as one hand-over.

    aiosqlite has no public way to run a function of ours there: this is the one use of its private
    `Connection._execute` (queues a callable for the connection's thread, answers its result) and
    `Connection._conn` (the sqlite3 connection), as aiosqlite 0.22 has them (pinned in pyproject.toml,
    checked by tests/integration/modules/chat/test_sqlite_statements.py)."""
    private: Any = driver  # aiosqlite leaves `_execute` untyped
    result: T = await private._execute(lambda: work(private._conn))
    return result


class Compiled:
    """A statement compiled for SQLite: its SQL, and how its parameters go in and its rows come out."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = cast("SQLCompiler", statement.compile(dialect=dialect))
        self.compiled = compiled
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        self.position = {name: index for index, name in enumerate(self.names)}
        """Where each named parameter goes in `parameters`' list."""
        self.binds = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.names
        ]
        self.results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.exported_columns
        ]

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        given = self.compiled.construct_params(values)
        return [
            given[name] if process is None else process(given[name])
            for name, process in zip(self.names, self.binds, strict=True)
        ]

    def rows(self, fetched: Iterable[Sequence[Any]]) -> list[Row]:
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, self.results, strict=True)
            )
            for row in fetched
        ]


@dataclass(frozen=True, slots=True)
class Prepared:
    """One attempt at a batch, ready for aiosqlite's thread: the statements with their parameters as
    SQLite takes them (UUIDs as 16 bytes), each message's seq left to fill in."""

    begin: str
    seqs_sql: str
    seqs_parameters: list[Any]
    counts: dict[bytes, int]
    """Seqs wanted, by conversation id."""
    insert_sql: str
    insert_parameters: list[Any]
    slots: list[tuple[int, bytes, bytes]]
    """Per message in order: where its seq goes in `insert_parameters`, its conversation, its id."""


def _write(prepared: Prepared, database: sqlite3.Connection) -> tuple[bool, list[Row]] | None:
    """In aiosqlite's thread, one transaction: (True, the inserted rows as SQLite gives them) committed;
    (False, the rows of messages stored earlier) rolled back; None, rolled back, if a conversation
    refused the seqs (a sender who is not a participant, or no such conversation)."""
    database.execute(prepared.begin)
    try:
        last_seqs = dict(database.execute(prepared.seqs_sql, prepared.seqs_parameters).fetchall())
        if prepared.counts.keys() - last_seqs.keys():
            database.rollback()
            return None
        next_seq = {cid: last_seqs[cid] - n + 1 for cid, n in prepared.counts.items()}
        parameters = list(prepared.insert_parameters)
        assigned = {}
        for slot, conversation, message in prepared.slots:
            parameters[slot] = assigned[message] = next_seq[conversation]
            next_seq[conversation] += 1
        rows = database.execute(prepared.insert_sql, parameters).fetchall()
        found = [row for row in rows if assigned.get(row[0]) != row[2]]
        if found:
            database.rollback()
            return False, found
        database.commit()
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # the error that ended the attempt stands
            database.rollback()
        raise
    return True, rows


class SqliteStatements(DriverStatements):
    """`CoreStatements` with the transaction and the hot statements on aiosqlite's `driver` connection."""

    BEGIN = "BEGIN IMMEDIATE"  # as every write transaction of the engine (see `app/core/db/engine.py`)
    driver: aiosqlite.Connection

    def __init__(self, connection: AsyncConnection, driver: aiosqlite.Connection) -> None:
        super().__init__(connection, driver)
        self._compiled: dict[int, tuple[Any, Compiled]] = {}
        self._inserts: dict[int, Compiled] = {}

    async def _start(self) -> None:
        await self.driver.execute(self.BEGIN)

    async def _end(self, *, commit: bool) -> None:
        await (self.driver.commit() if commit else self.driver.rollback())

    async def take_seqs(
        self, counts: dict[uuid.UUID, int], senders: dict[uuid.UUID, set[uuid.UUID]]
    ) -> dict[uuid.UUID, int]:
        statement, params = self.seq_statement(counts, senders)
        return {row[0]: row[1] for row in await self._fetch(self._seqs_compiled(statement), params)}

    async def insert(self, messages: Sequence[NewMessage]) -> Iterable[Sequence[Any]]:
        return await self._fetch(self._insert_compiled(len(messages)), _insert_values(messages))

    async def store_at_once(
        self, drafts: Sequence[Draft], mentions: Sequence[MentionSource]
    ) -> Iterable[Sequence[Any]] | None:
        """The batch in one hand-over, answered as PostgreSQL's one statement answers it (the draft's id,
        then the message, for one stored earlier; no mentions); None, with nothing stored, for a batch with
        a mention (the transaction notifies) or a refused conversation (the transaction settles it).

        An attempt that meets a `client_msg_id` stored earlier is rolled back, each draft of that id is
        answered with the stored message, and the others are written again in another hand-over."""
        if mentions:
            return None
        earlier: list[Row] = []
        pending = list(drafts)
        while pending:
            async with self._translated(self.BEGIN):
                written = await in_thread(self.driver, partial(_write, self._prepared(pending)))
            if written is None:
                return None
            committed, rows = written[0], self._insert_compiled(len(pending)).rows(written[1])
            if committed:
                return [(None, *row, None, None, None) for row in rows] + earlier
            found_by_key = {(row[1], row[3], row[6]): row for row in rows}
            answered = [draft for draft in pending if draft.key in found_by_key]
            if not answered:  # a row that is no draft's: the transaction way sorts it out
                return None
            earlier += [(draft.id, *found_by_key[draft.key], None, None, None) for draft in answered]
            pending = [draft for draft in pending if draft.key not in found_by_key]
        return earlier

    def _prepared(self, pending: list[Draft]) -> Prepared:
        """An attempt's statements with their parameters made in the event loop's thread, so that
        aiosqlite's thread, which holds the GIL while it runs Python, runs little more than SQLite."""
        counts, senders = seqs_wanted(pending)
        statement, params = self.seq_statement(counts, senders)
        seqs = self._seqs_compiled(statement)
        insert = self._insert_compiled(len(pending))
        placeholders = numbered(pending, counts)  # seqs from 1: the thread puts the real ones in
        return Prepared(
            begin=self.BEGIN,
            seqs_sql=seqs.sql,
            seqs_parameters=seqs.parameters(params),
            counts={cid.bytes: n for cid, n in counts.items()},
            insert_sql=insert.sql,
            insert_parameters=insert.parameters(_insert_values(placeholders)),
            slots=[
                (insert.position[f"seq_{index}"], draft.conversation_id.bytes, draft.id.bytes)
                for index, draft in enumerate(pending)
            ],
        )

    def _seqs_compiled(self, statement: Any) -> Compiled:
        compiled = self._compiled.get(id(statement))
        if compiled is None or compiled[0] is not statement:
            if len(self._compiled) >= SHAPES_KEPT:
                self._compiled.clear()
            compiled = self._compiled[id(statement)] = (
                statement,
                Compiled(statement, self.connection.dialect),
            )
        return compiled[1]

    def _insert_compiled(self, count: int) -> Compiled:
        compiled = self._inserts.get(count)
        if compiled is None:
            compiled = self._inserts[count] = Compiled(_upsert_of(count), self.connection.dialect)
        return compiled

    async def notify(self, sources: Sequence[MentionSource]) -> Iterable[Sequence[Any]]:
        return await self._fetch(Compiled(self.notify_statement(sources), self.connection.dialect), {})

    async def _fetch(self, compiled: Compiled, values: dict[str, Any]) -> list[Row]:
        async with self._translated(compiled.sql):
            fetched = await self.driver.execute_fetchall(compiled.sql, compiled.parameters(values))
        return compiled.rows(fetched)

    @asynccontextmanager
    async def _translated(self, sql: str) -> AsyncIterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise DBAPIError(sql, None, exc) from exc


def _insert_values(messages: Sequence[NewMessage]) -> dict[str, Any]:
    """The values of `_upsert_of(len(messages))`."""
    return {
        f"{key}_{index}": value
        for index, message in enumerate(messages)
        for key, value in message_values(message).items()
    }


def _upsert_of(count: int) -> Any:
    """`UPSERT_MESSAGE` for `count` rows given as `id_0`, `conversation_id_0`, … `client_msg_id_<count-1>`."""
    keys = [column.key for column in MESSAGE_COLUMNS if column.key != "created_at"]
    rows = [
        {key: bindparam(f"{key}_{index}", type_=MESSAGES.c[key].type) for key in keys}
        for index in range(count)
    ]
    return message_upsert(lambda table: sqlite_insert(table).values(rows))
