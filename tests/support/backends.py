"""The two ways Parley runs, as test parameters: SQLite + in process, PostgreSQL + Redis.

PostgreSQL tests get a database of their own per test process (created here, dropped at the end),
and Redis keys and channels a prefix of their own, so runs, and the pytest-xdist workers of one
run, never see each other's rows or messages. Migrations run once per run, into a template (a
PostgreSQL database and a SQLite file) that each process copies. Without PostgreSQL or Redis the
second half is skipped, except with CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from app.config.settings import Settings

PG_HOST = os.environ.get("PARLEY_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PARLEY_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PARLEY_TEST_PG_USER", "postgres")
REDIS_HOST = os.environ.get("PARLEY_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("PARLEY_TEST_REDIS_PORT", "6379"))
SHARED_RUN_ID = os.environ.setdefault("PARLEY_TEST_RUN_ID", uuid.uuid4().hex[:10])
"""One per pytest run: set by the first process and inherited by the pytest-xdist workers it starts."""
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
RUN_ID = f"{SHARED_RUN_ID}_{WORKER}" if WORKER else SHARED_RUN_ID
"""One per test process: names this process's database, SQLite file and Redis prefix."""
RUN_FOLDER = Path(tempfile.gettempdir()) / f"parley-test-{SHARED_RUN_ID}"
"""Files the processes of one run share: the migrated templates, the lock under which the first
process that needs one makes it, and the work units the workers collected (tests/support/scheduling.py)."""
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

BACKENDS = ("sqlite", "postgres")


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_services() -> None:
    """Skip (or, in CI, fail) when PostgreSQL or Redis cannot be reached."""
    missing = [
        name
        for name, host, port in (("PostgreSQL", PG_HOST, PG_PORT), ("Redis", REDIS_HOST, REDIS_PORT))
        if not reachable(host, port)
    ]
    if missing:
        reason = f"{' and '.join(missing)} not reachable at {PG_HOST}:{PG_PORT} / {REDIS_HOST}:{REDIS_PORT}"
        unavailable(reason, "the scaled-out backend")


def unavailable(reason: str, needed_for: str) -> NoReturn:
    """Skip a test whose tools or services are missing; with CI=true, fail it instead."""
    if IN_CI:
        pytest.fail(f"CI=true requires {needed_for}: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class Backend:
    """Environment of one backend; `env()` feeds both in-process apps and server processes."""

    name: str
    database_url: str
    redis_url: str | None
    redis_prefix: str

    def env(self, **overrides: Any) -> dict[str, str]:
        values = {
            "APP_ENV": "local",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url or "",
            "REDIS_PREFIX": self.redis_prefix,
            "LOG_LEVEL": "WARNING",
            "JWT_SECRET": "test-secret-test-secret-test-secret-0123",
            "RATE_LIMIT_AUTH": "1000/1",
            "RATE_LIMIT_REST": "1000/1",
        }
        values.update({key: str(value) for key, value in overrides.items()})
        return values

    def settings(self, **overrides: Any) -> Settings:
        return Settings.from_env(self.env(**overrides), env_file=None)


async def _create_pg_database(name: str, template: str | None = None) -> None:
    import asyncpg

    copied = f' TEMPLATE "{template}"' if template else ""
    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"{copied}')
    finally:
        await connection.close()


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def template_database(name: str) -> str:
    """The run's migrated template of backend `name`: a SQLite file's path or a database's name."""
    if name == "sqlite":
        return str(RUN_FOLDER / "template.db")
    return f"parley_test_{SHARED_RUN_ID}_template"


@contextmanager
def templates_locked() -> Iterator[None]:
    """Held while a template is checked for and made, so each is migrated by one process only."""
    RUN_FOLDER.mkdir(exist_ok=True)
    with (RUN_FOLDER / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def migrated_template(name: str) -> str:
    """The run's template of backend `name` (see `template_database`), created and migrated by the
    first process to ask; one whose migration failed is made again by the next."""
    from app.db.migrate import upgrade

    template = template_database(name)
    made = RUN_FOLDER / f"{name}.made"
    with templates_locked():
        if not made.exists():
            if name == "postgres":
                (RUN_FOLDER / "postgres.created").touch()
                asyncio.run(_drop_pg_database(template))
                asyncio.run(_create_pg_database(template))
            url = f"sqlite+aiosqlite:///{template}" if name == "sqlite" else pg_url(template)
            upgrade(Backend(name, url, None, "").settings())
            made.touch()
    return template


def remove_run_files() -> None:
    """Remove the run's templates and shared files (by the first process, once its workers have
    finished)."""
    if (RUN_FOLDER / "postgres.created").exists():
        asyncio.run(_drop_pg_database(template_database("postgres")))
    if RUN_FOLDER.exists():
        for path in RUN_FOLDER.iterdir():
            path.unlink()
        RUN_FOLDER.rmdir()


def make_backend(name: str, workdir: Path) -> Backend:
    """This process's storage of one backend: a copy of the run's migrated template."""
    template = migrated_template(name)
    if name == "sqlite":
        path = workdir / "parley-test.db"
        with sqlite3.connect(template) as source, sqlite3.connect(path) as copy:
            source.backup(copy)
        return Backend("sqlite", f"sqlite+aiosqlite:///{path}", None, f"parley-test-{RUN_ID}:")
    database = f"parley_test_{RUN_ID}"
    asyncio.run(_create_pg_database(database, template))
    return Backend(
        "postgres", pg_url(database), f"redis://{REDIS_HOST}:{REDIS_PORT}/0", f"parley-test-{RUN_ID}:"
    )


def destroy_backend(backend: Backend) -> None:
    if backend.name == "postgres":
        asyncio.run(_drop_pg_database(backend.database_url.rsplit("/", 1)[1]))
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        try:
            for key in client.scan_iter(match=f"{backend.redis_prefix}*", count=1000):
                client.delete(key)
        finally:
            client.close()
