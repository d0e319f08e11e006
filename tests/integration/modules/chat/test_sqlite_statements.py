"""aiosqlite's private API that the chat writer calls (`in_thread`), pinned in pyproject.toml: a
function of ours runs in the connection's own thread, on its sqlite3 connection, as one hand-over,
and what it raises comes back to the caller."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import aiosqlite
import pytest

from app.modules.chat.sqlite_statements import in_thread


async def test_a_function_runs_in_aiosqlite_s_thread_on_its_connection(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "pin.db") as driver:
        await driver.execute("CREATE TABLE t (x INTEGER)")
        await driver.commit()

        def write(database: sqlite3.Connection) -> tuple[int, list[tuple[int]]]:
            database.execute("INSERT INTO t VALUES (1), (2)")
            database.commit()
            return threading.get_ident(), database.execute("SELECT x FROM t").fetchall()

        thread, rows = await in_thread(driver, write)
        assert thread != threading.get_ident(), "not in the event loop's thread"
        assert rows == [(1,), (2,)]
        assert list(await driver.execute_fetchall("SELECT x FROM t")) == [(1,), (2,)], "the same connection"


async def test_an_error_in_aiosqlite_s_thread_reaches_the_caller(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "pin.db") as driver:

        def broken(database: sqlite3.Connection) -> None:
            database.execute("SELECT * FROM missing")

        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await in_thread(driver, broken)
        assert list(await driver.execute_fetchall("SELECT 1")) == [(1,)], "the connection serves on"
