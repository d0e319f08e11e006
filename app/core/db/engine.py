"""Engine and session factory for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import logging
from typing import Any

from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config.settings import Settings
from app.core.db.driver_reads import DriverReads, driver_reads

logger = logging.getLogger(__name__)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN (below)
    # is the one that counts; BEGIN IMMEDIATE takes the write lock up front, so concurrent
    # writers queue on busy_timeout instead of failing a lock upgrade.
    dbapi_connection.isolation_level = None
    # SQLite's lower() and LIKE fold ASCII letters only; `unicode_lower` folds every script, as
    # PostgreSQL's lower() and ILIKE do (a case-insensitive search uses it on SQLite).
    dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


READ_ONLY = "parley_read_only"
"""Execution option of connections whose transactions only read (see `Database.read_session_maker`)."""


def _sqlite_on_begin(connection: Any) -> None:
    # A transaction that only reads takes no lock up front: in WAL mode it reads a snapshot while
    # writers go on. Taking the write lock for it (as for writes, above) queued every handshake's
    # reads behind each other and behind chat writes in SQLite's busy handler, which sleeps 1 ms,
    # then 2, 5, 10... between tries.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine of `DATABASE_URL`.

    `hide_parameters`: a failed statement's error (and `DATABASE_ECHO`) shows the SQL but never its
    values, which include password hashes, tokens and message bodies.
    """
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            echo=settings.database_echo,
            hide_parameters=True,
            connect_args={"timeout": 30},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
        return engine
    # A third stays open; the rest is opened under load and closed again (10 + 20 by default).
    kept_open = max(1, settings.database_max_connections // 3)
    return create_async_engine(
        settings.database_url,
        echo=settings.database_echo,
        hide_parameters=True,
        pool_size=kept_open,
        max_overflow=settings.database_max_connections - kept_open,
        pool_pre_ping=True,
    )


class Database:
    """Owns the engine; hands out sessions to requests (via the plugin config) and units of work."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.session_maker = async_sessionmaker(self.engine, expire_on_commit=False, class_=AsyncSession)
        self.read_session_maker = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, class_=AsyncSession
        )
        """Sessions for work that only reads: on SQLite their transactions begin without the write lock
        (a write in one would have to upgrade its lock, and fails if a writer committed meanwhile)."""
        self.reads: DriverReads = driver_reads(
            self.engine,
            lambda connection: _sqlite_on_connect(connection, None),
            settings.database_max_connections,
        )
        """Single SELECTs on the driver's connection, with no session nor transaction (a handshake's)."""

    def plugin_config(self) -> SQLAlchemyAsyncConfig:
        """advanced-alchemy's Litestar config over this engine; requests get `db_session`."""
        return SQLAlchemyAsyncConfig(
            engine_instance=self.engine,
            session_config=AsyncSessionConfig(expire_on_commit=False),
            session_dependency_key="db_session",
            create_all=False,
        )

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.reads.close()
        await self.engine.dispose()
