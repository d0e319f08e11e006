"""The presence module's queries on users: when each was last seen."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select, update

from app.core.db import utc_now
from app.modules.accounts import User


class LastSeenService(SQLAlchemyAsyncRepositoryService[User]):
    class Repo(SQLAlchemyAsyncRepository[User]):
        model_type = User

    repository_type = Repo

    async def last_seen_of(self, user_ids: Sequence[str]) -> dict[str, dt.datetime | None]:
        """`last_seen_at` of the users that exist among `user_ids` (one query)."""
        if not user_ids:
            return {}
        statement = select(User.id, User.last_seen_at).where(User.id.in_([uuid.UUID(u) for u in user_ids]))
        rows = await self.repository.session.execute(statement)
        return {str(user_id): seen for user_id, seen in rows}

    async def touch(self, user_ids: Sequence[str]) -> dict[str, dt.datetime | None]:
        """Set `last_seen_at` to the database clock for all of them (one statement) and commit."""
        if not user_ids:
            return {}
        statement = (
            update(User)
            .where(User.id.in_([uuid.UUID(u) for u in user_ids]))
            .values(last_seen_at=utc_now())
            .returning(User.id, User.last_seen_at)
        )
        rows = (await self.repository.session.execute(statement)).all()
        await self.repository.session.commit()
        return {str(user_id): seen for user_id, seen in rows}
