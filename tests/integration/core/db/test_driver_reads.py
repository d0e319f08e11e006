"""Reads on the driver's connection, on both backends: the rows SQLAlchemy gives, fresh after each commit."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy.exc
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Boolean, Select, String, bindparam, column, event, func, insert, select, table, update

from app.core.db import Database
from app.core.db.driver_reads import HELD_READS, DriverReads, HeldReads
from tests.support.backends import PG_HOST, PG_PORT, PG_USER, Backend

USERS = table(
    "users",
    column("id", GUID(length=16)),
    column("username", String()),
    column("display_name", String()),
    column("is_admin", Boolean()),
    column("last_seen_at", DateTimeUTC(timezone=True)),
)
USER_ID = bindparam("user_id", type_=GUID(length=16))
ONE_USER = select(
    USERS.c.id, USERS.c.username, USERS.c.is_admin, USERS.c.last_seen_at, func.count().over().label("users")
).where(USERS.c.id == USER_ID)


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    database = Database(backend.settings())
    yield database
    await database.dispose()


async def add_user(db: Database, seen: dt.datetime | None) -> uuid.UUID:
    user_id = uuid.uuid4()
    values = {"id": user_id, "username": f"r{user_id.hex[:12]}", "display_name": "R", "is_admin": False}
    async with db.session_maker() as session:
        await session.execute(insert(USERS).values(**values, last_seen_at=seen))
        await session.commit()
    return user_id


async def test_the_rows_are_the_ones_sqlalchemy_gives(db: Database) -> None:
    user_id = await add_user(db, dt.datetime(2026, 11, 30, 8, 15, 1, 250000, tzinfo=dt.UTC))
    async with db.session_maker() as session:
        expected = (await session.execute(ONE_USER, {"user_id": user_id})).one()

    [row] = await db.reads.rows(ONE_USER, {"user_id": user_id})

    assert tuple(row) == tuple(expected)
    assert (row.id, row.username, row.is_admin, row.users) == (user_id, expected.username, False, 1)
    assert row.last_seen_at == dt.datetime(2026, 11, 30, 8, 15, 1, 250000, tzinfo=dt.UTC)


async def test_each_read_sees_what_was_committed_before_it(db: Database) -> None:
    user_id = await add_user(db, None)
    [before] = await db.reads.rows(ONE_USER, {"user_id": user_id})
    seen = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    async with db.session_maker() as session:
        await session.execute(update(USERS).where(USERS.c.id == user_id).values(last_seen_at=seen))
        await session.commit()

    [after] = await db.reads.rows(ONE_USER, {"user_id": user_id})

    assert (before.last_seen_at, after.last_seen_at) == (None, seen)
    assert await db.reads.rows(ONE_USER, {"user_id": uuid.uuid4()}) == []


async def test_a_failed_read_is_sqlalchemys_error_and_the_next_one_works(db: Database) -> None:
    broken: Select[Any] = select(column("no_such_column")).select_from(USERS).where(USERS.c.id == USER_ID)
    with pytest.raises(sqlalchemy.exc.DBAPIError) as failure:
        await db.reads.rows(broken, {"user_id": uuid.uuid4()})
    assert "no_such_column" in str(failure.value)

    user_id = await add_user(db, None)
    assert [row.id for row in await db.reads.rows(ONE_USER, {"user_id": user_id})] == [user_id]


async def test_reads_through_the_engines_pool_give_the_same_rows(db: Database) -> None:
    """The path of PostgreSQL, and of a SQLite database the reads open no connection of their own to."""
    user_id = await add_user(db, dt.datetime(2026, 11, 30, 8, 15, tzinfo=dt.UTC))
    pooled = DriverReads(db.engine)

    assert await pooled.rows(ONE_USER, {"user_id": user_id}) == await db.reads.rows(
        ONE_USER, {"user_id": user_id}
    )
    with pytest.raises(sqlalchemy.exc.DBAPIError):
        await pooled.rows(select(column("no_such_column")).select_from(USERS), {})


def postgres_only(backend: Backend) -> None:
    if backend.name != "postgres":
        pytest.skip("SQLite file reads have their own connection; this is PostgreSQL's pool")


async def test_postgres_reads_keep_their_connections_out_of_the_pool(db: Database, backend: Backend) -> None:
    """Reads, one after another and many at once, check out two connections in all: none pays a
    check-out nor the pool's pre-ping after the first."""
    postgres_only(backend)
    user_id = await add_user(db, None)
    checkouts: list[object] = []
    event.listen(db.engine.sync_engine.pool, "checkout", lambda *args: checkouts.append(args))

    for _ in range(10):
        await db.reads.rows(ONE_USER, {"user_id": user_id})
    found = await asyncio.gather(*(db.reads.rows(ONE_USER, {"user_id": user_id}) for _ in range(40)))

    assert all([row.id for row in rows] == [user_id] for rows in found)
    assert 1 <= len(checkouts) <= HELD_READS


TERMINATE_OTHERS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
"""


async def test_a_read_whose_connection_was_terminated_is_run_again_on_a_new_one(
    db: Database, backend: Backend
) -> None:
    postgres_only(backend)
    user_id = await add_user(db, None)
    await db.reads.rows(ONE_USER, {"user_id": user_id})
    database = backend.database_url.rsplit("/", 1)[1]
    killer = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
    try:
        terminated = await killer.fetch(TERMINATE_OTHERS, database)
    finally:
        await killer.close()
    assert any(row[0] for row in terminated), "the reads' connection, among others"

    assert [row.id for row in await db.reads.rows(ONE_USER, {"user_id": user_id})] == [user_id]


async def test_a_pool_too_small_to_spare_two_connections_lends_one_per_read(backend: Backend) -> None:
    postgres_only(backend)
    for max_connections, kind in (("7", DriverReads), ("8", HeldReads)):
        database = Database(backend.settings(DATABASE_MAX_CONNECTIONS=max_connections))
        assert type(database.reads) is kind
        await database.dispose()
