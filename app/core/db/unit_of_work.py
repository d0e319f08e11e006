"""A unit of work for code outside an HTTP request: socket handlers, CLI and background tasks.

Services are built on one session; nothing is written unless the caller commits::

    async with UnitOfWork(db) as uow:
        users = uow.service(UserService)
        await users.create(...)
        await uow.commit()
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db.engine import Database

S = TypeVar("S")


class UnitOfWork:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._session: AsyncSession | None = None
        self._services: dict[type[Any], Any] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._db.session_maker()
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
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._services.clear()
