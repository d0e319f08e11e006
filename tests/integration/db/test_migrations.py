"""Migrations on both databases: a fresh database goes to head, down to base and back, and the
schema they build is the one the models describe.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from app.config.settings import Settings
from app.core.db import Base
from app.core.db.engine import create_engine
from app.db.migrate import alembic_config, downgrade, upgrade
from app.db.models import load_models
from tests.support.backends import Backend, _create_pg_database, _drop_pg_database
from tests.support.forkserver import PARLEY, run_forked


@pytest.fixture
def fresh(backend: Backend, tmp_path: Path) -> Iterator[Settings]:
    """Settings pointing at an empty database of the backend's kind, dropped afterwards."""
    if backend.name == "sqlite":
        yield backend.settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
        return
    name = f"parley_migrations_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_pg_database(name))
    try:
        yield backend.settings(DATABASE_URL=f"{backend.database_url.rsplit('/', 1)[0]}/{name}")
    finally:
        asyncio.run(_drop_pg_database(name))


async def inspect_database(settings: Settings, look: Any) -> Any:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(look)
    finally:
        await engine.dispose()


def tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def drift(connection: Connection) -> list[Any]:
    load_models()
    dialect = connection.dialect.name

    def on_this_dialect(item: Any, _name: str | None, _kind: str, _reflected: bool, _other: Any) -> bool:
        """Autogenerate ignores `ddl_if(dialect=...)`; an index meant for another database is not drift."""
        condition = getattr(item, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    # SQLite reflects GUID and DateTimeUTC as their storage types, so types are compared on PostgreSQL only.
    context = MigrationContext.configure(
        connection, opts={"compare_type": dialect == "postgresql", "include_object": on_this_dialect}
    )
    return list(compare_metadata(context, Base.metadata))


def test_fresh_database_upgrades_to_head(fresh: Settings) -> None:
    upgrade(fresh)
    found = asyncio.run(inspect_database(fresh, tables))
    assert {"users", "alembic_version"} <= found
    upgrade(fresh)


def test_every_migration_goes_down_and_up_again(fresh: Settings) -> None:
    upgrade(fresh)
    downgrade(fresh, "base")
    assert asyncio.run(inspect_database(fresh, tables)) <= {"alembic_version"}
    upgrade(fresh)
    assert "users" in asyncio.run(inspect_database(fresh, tables))


def test_migrations_build_what_the_models_describe(fresh: Settings) -> None:
    upgrade(fresh)
    assert asyncio.run(inspect_database(fresh, drift)) == []


def parley_db(settings: Settings, *args: str) -> None:
    """`parley db ARGS` as an operator runs it, with PARLEY_MODULES naming the example module."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": settings.database_url,
        "PARLEY_MODULES": "game",
    }
    done = run_forked([PARLEY, "db", *args], env, Path.cwd(), timeout=60)
    assert done.returncode == 0, done.stderr


def versions(connection: Connection) -> set[str]:
    return {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}


def test_a_module_brings_its_own_migration_branch(fresh: Settings) -> None:
    """The example module's table comes with PARLEY_MODULES only, as a branch of its own: applied
    beside Parley's head, again without effect, taken down alone, and up again."""
    parley_head = ScriptDirectory.from_config(alembic_config(fresh)).get_current_head()
    upgrade(fresh)
    assert "game_scores" not in asyncio.run(inspect_database(fresh, tables))
    for _ in range(2):
        parley_db(fresh, "upgrade")
        assert {"users", "game_scores"} <= asyncio.run(inspect_database(fresh, tables))
        assert asyncio.run(inspect_database(fresh, versions)) == {parley_head, "game_0001"}
    parley_db(fresh, "downgrade", "game@base")
    found = asyncio.run(inspect_database(fresh, tables))
    assert "game_scores" not in found
    assert "users" in found
    assert asyncio.run(inspect_database(fresh, versions)) == {parley_head}
    parley_db(fresh, "upgrade")
    assert "game_scores" in asyncio.run(inspect_database(fresh, tables))
    parley_db(fresh, "downgrade", "base")
    assert asyncio.run(inspect_database(fresh, tables)) <= {"alembic_version"}


def message_triggers(connection: Connection) -> dict[str, str]:
    """The triggers on `messages` (PostgreSQL), each with what it runs for: each row or the statement."""
    rows = connection.execute(
        text(
            "SELECT tgname, CASE WHEN tgtype & 1 = 1 THEN 'row' ELSE 'statement' END FROM pg_trigger"
            " WHERE tgrelid = 'messages'::regclass AND NOT tgisinternal"
        )
    )
    return {row[0]: row[1] for row in rows}


def test_postgres_advances_the_senders_read_once_per_statement(fresh: Settings, backend: Backend) -> None:
    """0006 swaps 0002's trigger run for each message inserted for one run per INSERT statement, and
    its downgrade swaps it back (SQLite has no statement triggers and keeps 0002's)."""
    if backend.name != "postgres":
        pytest.skip("SQLite keeps the trigger for each row")
    upgrade(fresh)
    assert asyncio.run(inspect_database(fresh, message_triggers)) == {
        "trg_messages_advance_senders_read": "statement"
    }
    downgrade(fresh, "0005")
    assert asyncio.run(inspect_database(fresh, message_triggers)) == {
        "trg_messages_advance_sender_read": "row"
    }
