"""Units of work on both backends: a task's blocks inside `shared_unit_of_work` use one session."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, shared_unit_of_work, unit_of_work
from tests.support.backends import Backend


async def one(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT 1"))).scalar_one())


async def test_the_blocks_of_one_task_share_a_session_only_inside_the_scope(backend: Backend) -> None:
    db = Database(backend.settings())
    try:
        async with shared_unit_of_work(db):
            async with unit_of_work(db) as first:
                assert await one(first.session) == 1
                shared = first.session
            async with unit_of_work(db) as second:
                assert second.session is shared
                assert shared.in_transaction()
                assert await one(second.session) == 1
        assert not shared.in_transaction()
        async with unit_of_work(db) as after:
            assert after.session is not shared
            assert await one(after.session) == 1
    finally:
        await db.dispose()


async def test_a_task_started_inside_the_scope_has_a_unit_of_its_own(backend: Backend) -> None:
    db = Database(backend.settings())

    async def own_session() -> AsyncSession:
        # no statement here: on SQLite it would wait for the shared transaction's write lock
        async with unit_of_work(db) as uow:
            return uow.session

    try:
        async with shared_unit_of_work(db):
            async with unit_of_work(db) as uow:
                shared = uow.session
                assert await one(shared) == 1
            assert await asyncio.create_task(own_session()) is not shared
    finally:
        await db.dispose()


async def test_a_failed_block_rolls_back_and_the_next_block_works(backend: Backend) -> None:
    db = Database(backend.settings())
    try:
        async with shared_unit_of_work(db):
            with pytest.raises(sqlalchemy.exc.DBAPIError):
                async with unit_of_work(db) as failing:
                    await failing.session.execute(text("SELECT no_such_column FROM users"))
            async with unit_of_work(db) as next_block:
                assert await one(next_block.session) == 1
    finally:
        await db.dispose()


async def test_a_read_only_unit_reads_while_a_writer_holds_its_transaction(backend: Backend) -> None:
    """A read-only unit does not queue behind a writer: on SQLite its transaction takes no write lock
    (a unit that may write takes it at BEGIN, and would wait here for the writer's commit, up to the
    busy timeout of 10 s)."""
    db = Database(backend.settings(DATABASE_MAX_CONNECTIONS="3"))
    try:
        async with unit_of_work(db) as writer:
            await writer.session.execute(text("UPDATE users SET display_name = display_name WHERE 1 = 0"))
            assert writer.session.in_transaction()
            async with shared_unit_of_work(db, read_only=True):
                async with unit_of_work(db) as reader:
                    count = await asyncio.wait_for(
                        reader.session.execute(text("SELECT count(*) FROM users")), 2
                    )
                    assert count.scalar_one() >= 0
            await writer.rollback()
    finally:
        await db.dispose()
