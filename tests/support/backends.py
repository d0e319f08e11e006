"""The two ways Parley runs, as test parameters: SQLite + in process, PostgreSQL + Redis.

PostgreSQL tests get a database of their own per test run (created here, dropped at the end), and
Redis keys and channels a prefix of their own, so runs never see each other's rows or messages.
Without PostgreSQL or Redis the second half is skipped, except with CI=true, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
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
RUN_ID = uuid.uuid4().hex[:10]
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


async def _create_pg_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_pg_database(name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def make_backend(name: str, workdir: Path) -> Backend:
    """Create the storage of one backend and migrate it."""
    from app.db.migrate import upgrade

    if name == "sqlite":
        backend = Backend(
            "sqlite", f"sqlite+aiosqlite:///{workdir / 'parley-test.db'}", None, f"parley-test-{RUN_ID}:"
        )
    else:
        database = f"parley_test_{RUN_ID}"
        asyncio.run(_create_pg_database(database))
        backend = Backend(
            "postgres",
            f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}",
            f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            f"parley-test-{RUN_ID}:",
        )
    upgrade(backend.settings())
    return backend


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
