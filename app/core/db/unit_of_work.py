"""A unit of work for code outside an HTTP request: socket handlers, CLI and background tasks.

Services are built on one session; nothing is written unless the caller commits::

    async with UnitOfWork(db) as uow:
        users = uow.service(UserService)
        await users.create(...)
        await uow.commit()

`shared_unit_of_work(db)` lets a sequence of such blocks in one task (a socket handshake's rooms, or
its `session:ready` parts) use one session: one pooled connection checked out and one transaction
begun for all of them rather than one each. Units other tasks open are their own. Blocks that only
read say so (`read_only=True`): on SQLite their transaction then takes no write lock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.engine import Database

S = TypeVar("S")


class UnitOfWork:
    """With `read_only`, the unit's session only reads (`Database.read_session_maker`)."""

    def __init__(self, db: Database, *, read_only: bool = False) -> None:
        self._db = db
        self._read_only = read_only
        self._session: AsyncSession | None = None
        self._services: dict[type[Any], Any] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            maker = self._db.read_session_maker if self._read_only else self._db.session_maker
            self._session = maker()
        return self._session

    def service(self, service_type: type[S]) -> S:
        """The one instance of `service_type` bound to this unit's session."""
        if service_type not in self._services:
            self._services[service_type] = service_type(session=self.session)  # type: ignore[call-arg]
        return self._services[service_type]  # type: ignore[no-any-return]

    async def commit(self) -> None:
        await self.session.commit()

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.rollback()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # A session that holds no transaction holds no connection either: closing it would only
        # cost a greenlet switch, which most socket events (whose services never query) would pay.
        if self._session is not None and self._session.in_transaction():
            await self._session.close()
        self._session = None
        self._services.clear()


class BorrowedUnitOfWork(UnitOfWork):
    """A block's view of the shared unit: leaving it keeps the session open for the next block,
    except that a block that fails rolls back, so the next one starts on a clean transaction."""

    def __init__(self, owner: UnitOfWork) -> None:
        self._owner = owner

    @property
    def session(self) -> AsyncSession:
        return self._owner.session

    def service(self, service_type: type[S]) -> S:
        return self._owner.service(service_type)

    async def rollback(self) -> None:
        await self._owner.rollback()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            await self._owner.rollback()


_SHARED: ContextVar[tuple[UnitOfWork, asyncio.Task[Any] | None] | None] = ContextVar(
    "shared_unit_of_work", default=None
)


def unit_of_work(db: Database) -> UnitOfWork:
    """A new unit, or a view of the shared one when the current task opened it."""
    shared = _SHARED.get()
    if shared is not None and shared[1] is asyncio.current_task():
        return BorrowedUnitOfWork(shared[0])
    return UnitOfWork(db)


@contextlib.asynccontextmanager
async def shared_unit_of_work(db: Database, *, read_only: bool = False) -> AsyncIterator[None]:
    """Inside, this task's `unit_of_work(db)` blocks share one session, closed on the way out.
    Tasks started inside inherit the context but not the session (it is not safe to share). With
    `read_only`, the blocks inside only read (see `UnitOfWork`)."""
    owner = UnitOfWork(db, read_only=read_only)
    token = _SHARED.set((owner, asyncio.current_task()))
    try:
        async with owner:
            yield
    finally:
        _SHARED.reset(token)
