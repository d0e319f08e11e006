"""Declarative base: UUID primary keys and timestamps taken from the database clock in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

from advanced_alchemy.base import UUIDBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql.functions import FunctionElement


class utc_now(FunctionElement[dt.datetime]):  # noqa: N801 - reads like the SQL function it renders
    """The database's current time in UTC, with sub-second precision on every backend."""

    type = DateTimeUTC(timezone=True)
    inherit_cache = True


@compiles(utc_now, "postgresql")
def _utc_now_postgresql(_element: utc_now, _compiler: Any, **_kw: Any) -> str:
    return "statement_timestamp()"


@compiles(utc_now, "sqlite")
def _utc_now_sqlite(_element: utc_now, _compiler: Any, **_kw: Any) -> str:
    # Six fractional digits so SQLAlchemy's SQLite DATETIME parser reads microseconds.
    return "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"


class Base(UUIDBase):
    """Every Parley table: a UUID `id` primary key."""

    __abstract__ = True


class DatabaseClockMixin:
    """`created_at` / `updated_at` set by the database, never by the application's clock."""

    @declared_attr
    def created_at(cls) -> Mapped[dt.datetime]:  # noqa: N805
        return mapped_column(DateTimeUTC(timezone=True), server_default=utc_now(), nullable=False)

    @declared_attr
    def updated_at(cls) -> Mapped[dt.datetime]:  # noqa: N805
        return mapped_column(
            DateTimeUTC(timezone=True), server_default=utc_now(), server_onupdate=utc_now(), nullable=False
        )
