"""The database engine on both backends: the values of a statement never reach an error or the log."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from app.core.db import Database
from tests.support.backends import Backend

SECRET = "argon2id$v=19$hunter2-hash"


async def test_a_failed_statement_shows_its_sql_but_not_its_values(backend: Backend) -> None:
    db = Database(backend.settings())
    try:
        async with db.engine.connect() as connection:
            with pytest.raises(sqlalchemy.exc.DBAPIError) as failure:
                await connection.execute(
                    text("SELECT id FROM users WHERE username = :name AND no_such_column = 1"),
                    {"name": SECRET},
                )
    finally:
        await db.dispose()
    shown = str(failure.value)
    assert "no_such_column" in shown
    assert SECRET not in shown
    assert "parameters hidden" in shown


async def test_statement_echo_leaves_the_values_out(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(backend.settings(DATABASE_ECHO="true"))
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine"):
            async with db.engine.connect() as connection:
                found = await connection.execute(
                    text("SELECT count(*) FROM users WHERE username = :name"), {"name": SECRET}
                )
                assert found.scalar_one() == 0
    finally:
        await db.dispose()
    assert "FROM users WHERE username" in caplog.text
    assert SECRET not in caplog.text
