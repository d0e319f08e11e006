"""The batch's statements on SQLite, run on aiosqlite's connection itself.

The statements are `CoreStatements`' own, each compiled once (the multi-row insert once per number of
rows) and then run with `execute_fetchall`: one hand-over to aiosqlite's thread per statement, where
SQLAlchemy's adapter makes four (cursor, execute, fetch, close), each through its bridge from asyncio.
The values go in and come out through the columns' own SQLAlchemy types (UUIDs as 16 bytes, times as
text), so the rows are the ones SQLAlchemy would give. A failure is raised as SQLAlchemy's `DBAPIError`
around sqlite3's, as SQLAlchemy raises it.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

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
    DriverStatements,
    MentionSource,
    NewMessage,
    message_values,
)

Processor = Callable[[Any], Any] | None


class Compiled:
    """A statement compiled for SQLite: its SQL, and how its parameters go in and its rows come out."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = cast("SQLCompiler", statement.compile(dialect=dialect))
        self.compiled = compiled
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
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

    def rows(self, fetched: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, self.results, strict=True)
            )
            for row in fetched
        ]


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
        compiled = self._compiled.get(id(statement))
        if compiled is None or compiled[0] is not statement:
            if len(self._compiled) >= SHAPES_KEPT:
                self._compiled.clear()
            compiled = self._compiled[id(statement)] = (
                statement,
                Compiled(statement, self.connection.dialect),
            )
        return {row[0]: row[1] for row in await self._fetch(compiled[1], params)}

    async def insert(self, messages: Sequence[NewMessage]) -> Iterable[Sequence[Any]]:
        compiled = self._inserts.get(len(messages))
        if compiled is None:
            compiled = self._inserts[len(messages)] = Compiled(
                _upsert_of(len(messages)), self.connection.dialect
            )
        params = {
            f"{key}_{index}": value
            for index, message in enumerate(messages)
            for key, value in message_values(message).items()
        }
        return await self._fetch(compiled, params)

    async def notify(self, sources: Sequence[MentionSource]) -> Iterable[Sequence[Any]]:
        return await self._fetch(Compiled(self.notify_statement(sources), self.connection.dialect), {})

    async def _fetch(self, compiled: Compiled, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        async with self._translated(compiled.sql):
            fetched = await self.driver.execute_fetchall(compiled.sql, compiled.parameters(values))
        return compiled.rows(fetched)

    @asynccontextmanager
    async def _translated(self, sql: str) -> AsyncIterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise DBAPIError(sql, None, exc) from exc


def _upsert_of(count: int) -> Any:
    """`UPSERT_MESSAGE` for `count` rows given as `id_0`, `conversation_id_0`, … `client_msg_id_<count-1>`."""
    keys = [column.key for column in MESSAGE_COLUMNS if column.key != "created_at"]
    rows = [
        {key: bindparam(f"{key}_{index}", type_=MESSAGES.c[key].type) for key in keys}
        for index in range(count)
    ]
    return message_upsert(lambda table: sqlite_insert(table).values(rows))
