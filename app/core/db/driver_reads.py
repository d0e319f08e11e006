"""Single statements that only read, run on the database driver's own connection.

A socket handshake reads a few rows (its rooms, its `session:ready`). Through a SQLAlchemy session each
such read cost a pooled connection's checkout, a BEGIN, the statement (on SQLite four hand-overs to
aiosqlite's thread: cursor, execute, fetch, close), a ROLLBACK and the check-in: most of a handshake's
server CPU. One SELECT needs no transaction, as it reads one consistent snapshot by itself, so
`DriverReads.rows` runs it as one call of the driver: `execute_fetchall` on SQLite, `fetch` (a statement
asyncpg prepares once per connection) on PostgreSQL. The statement is compiled once; its parameters go
in and its rows come out through the columns' own SQLAlchemy types, so the values are those SQLAlchemy
would give, on rows read by attribute like SQLAlchemy's. A driver's failure is raised as SQLAlchemy's
`DBAPIError` around it, as SQLAlchemy raises it.

On a SQLite file the reads have a connection of their own, opened once, with the engine's settings:
they wait for no pooled connection and pay no check-out. On PostgreSQL they keep up to two connections
checked out of the engine's pool (counted in its limit), each serving one read at a time: a read pays
neither a check-out nor the pool's pre-ping (one round trip), and one that finds its connection dead
(a database restart, a connection cut) is run again once on a new one. Elsewhere (SQLite in memory,
or a pool too small to lend two connections) each read checks a connection out of the engine's pool
(no transaction is begun on it).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import aiosqlite
import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

from app.core.db.connections import give_back

Processor = Callable[[Any], Any] | None


class CompiledRead:
    """A SELECT compiled for one dialect: its SQL, how its parameters go in and how its rows come out."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._fixed = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        """The values the statement holds itself (a LIMIT's), used where `parameters` is given none."""
        self._names = tuple(compiled.positiontup or ())
        self._binds = [
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self._names
        ]
        columns = list(statement.selected_columns)
        self._results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self._row: Any = namedtuple("Row", [column.key for column in columns], rename=True)  # type: ignore[misc]

    def parameters(self, values: Mapping[str, Any]) -> list[Any]:
        """The driver's parameters, in their order in the SQL; a missing one raises `KeyError`."""
        given = [values[name] if name in values else self._fixed[name] for name in self._names]
        return [
            value if process is None else process(value)
            for value, process in zip(given, self._binds, strict=True)
        ]

    def rows(self, fetched: Sequence[Sequence[Any]]) -> list[Any]:
        """Rows whose values are read by position or by column name, as SQLAlchemy's."""
        make = self._row._make
        return [
            make(
                value if process is None else process(value)
                for value, process in zip(row, self._results, strict=True)
            )
            for row in fetched
        ]


class DriverReads:
    """Runs a SELECT as one call of the driver (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._compiled: dict[int, tuple[Select[Any], CompiledRead]] = {}

    async def rows(self, statement: Select[Any], values: Mapping[str, Any]) -> list[Any]:
        """The rows of `statement` with its parameters `values`. `statement` is one built once and kept
        (it is compiled on first use and found again by identity)."""
        compiled = self._compiled_read(statement)
        parameters = compiled.parameters(values)
        return compiled.rows(await self._fetch(compiled.sql, parameters))

    def _compiled_read(self, statement: Select[Any]) -> CompiledRead:
        kept = self._compiled.get(id(statement))
        if kept is None or kept[0] is not statement:
            kept = self._compiled[id(statement)] = (statement, CompiledRead(statement, self.engine.dialect))
        return kept[1]

    async def _fetch(self, sql: str, parameters: list[Any]) -> Sequence[Sequence[Any]]:
        async with self.engine.connect() as connection:
            driver = (await connection.get_raw_connection()).driver_connection
            try:
                return await _driver_fetch(driver, sql, parameters)
            except Exception as exc:
                raise DBAPIError(sql, None, exc) from exc

    async def close(self) -> None:
        """Close what the reads hold of their own; the engine's pool is the engine's."""


class SqliteFileReads(DriverReads):
    """`DriverReads` on a connection of their own to a SQLite file, opened on first use."""

    def __init__(self, engine: AsyncEngine, path: str, setup: Callable[[sqlite3.Connection], None]) -> None:
        super().__init__(engine)
        self._path = path
        self._setup = setup
        self._driver: aiosqlite.Connection | None = None
        self._opening = asyncio.Lock()

    async def _fetch(self, sql: str, parameters: list[Any]) -> Sequence[Sequence[Any]]:
        driver = self._driver or await self._open()
        try:
            return list(await driver.execute_fetchall(sql, parameters))
        except sqlite3.Error as exc:
            raise DBAPIError(sql, None, exc) from exc

    async def _open(self) -> aiosqlite.Connection:
        async with self._opening:
            if self._driver is None:
                self._driver = await aiosqlite.Connection(self._connect, iter_chunk_size=64)
        return self._driver

    def _connect(self) -> sqlite3.Connection:
        """The connection, made and set up on aiosqlite's thread (as sqlite3 wants)."""
        connection = sqlite3.connect(self._path, timeout=30)
        self._setup(connection)
        return connection

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            await driver.close()


class HeldConnection:
    """One of `HeldReads`' connections, serving one read at a time."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.connection: AsyncConnection | None = None
        self.driver: asyncpg.Connection | None = None


class HeldReads(DriverReads):
    """`DriverReads` on PostgreSQL connections checked out of the engine's pool once and kept."""

    def __init__(self, engine: AsyncEngine, count: int) -> None:
        super().__init__(engine)
        self._held = [HeldConnection() for _ in range(count)]
        self._turn = 0

    async def _fetch(self, sql: str, parameters: list[Any]) -> Sequence[Sequence[Any]]:
        held = next((held for held in self._held if not held.lock.locked()), None)
        if held is None:  # all busy: wait for them in turn
            self._turn = (self._turn + 1) % len(self._held)
            held = self._held[self._turn]
        async with held.lock:
            try:
                return await self._fetch_on(held, sql, parameters)
            except DBAPIError as failure:
                if not failure.connection_invalidated:
                    raise
            return await self._fetch_on(held, sql, parameters)  # once more, on a new connection

    async def _fetch_on(
        self, held: HeldConnection, sql: str, parameters: list[Any]
    ) -> Sequence[Sequence[Any]]:
        driver = held.driver
        if driver is None:
            held.connection = await self.engine.connect()
            raw = await held.connection.get_raw_connection()
            driver = held.driver = cast("asyncpg.Connection", raw.driver_connection)
        try:
            rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *parameters)
        except Exception as exc:
            # An internal client error is the protocol out of step: the end of a terminated connection.
            dead = driver.is_closed() or isinstance(exc, asyncpg.InternalClientError)
            if dead:
                await self._drop(held)
            raise DBAPIError(sql, None, exc, connection_invalidated=dead) from exc
        return rows

    @staticmethod
    async def _drop(held: HeldConnection, *, invalidate: bool = True) -> None:
        connection, held.connection, held.driver = held.connection, None, None
        await give_back(connection, invalidate=invalidate)

    async def close(self) -> None:
        """Give the connections back to the pool."""
        for held in self._held:
            await self._drop(held, invalidate=False)


HELD_READS = 2
"""Connections the PostgreSQL reads keep, where the pool has four times as many to give."""


def driver_reads(
    engine: AsyncEngine, sqlite_setup: Callable[[sqlite3.Connection], None], max_connections: int
) -> DriverReads:
    """The reads of `engine`: on a connection of their own for a SQLite file (set up by
    `sqlite_setup`, as the engine's are), on connections kept out of a PostgreSQL pool of
    `max_connections` that can spare them, through the engine's pool otherwise."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" and not engine.url.query:
        return SqliteFileReads(engine, database, sqlite_setup)
    if engine.dialect.name == "postgresql" and max_connections >= 4 * HELD_READS:
        return HeldReads(engine, HELD_READS)
    return DriverReads(engine)


async def _driver_fetch(driver: Any, sql: str, parameters: list[Any]) -> Sequence[Sequence[Any]]:
    if isinstance(driver, aiosqlite.Connection):
        return list(await driver.execute_fetchall(sql, parameters))
    rows: Sequence[Sequence[Any]] = await driver.fetch(sql, *parameters)
    return rows
