"""Announcements: stored once, listed since a moment, and replayed since a user was last seen."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import func, literal, select

from app.modules.accounts import User
from app.modules.announcements.models import Announcement
from app.modules.announcements.schemas import AnnouncementIn, AnnouncementOut

NEW_USER_WINDOW = dt.timedelta(days=7)
SESSION_READY_CAP = 20


def announcement_out(row: Announcement) -> AnnouncementOut:
    return AnnouncementOut(
        id=str(row.id),
        title=row.title,
        body=row.body,
        url=row.url,
        image_url=row.image_url,
        metadata=row.extra,
        created_at=row.created_at,
    )


class AnnouncementService(SQLAlchemyAsyncRepositoryService[Announcement]):
    class Repo(SQLAlchemyAsyncRepository[Announcement]):
        model_type = Announcement

    repository_type = Repo

    async def publish(self, data: AnnouncementIn, author_id: uuid.UUID) -> Announcement:
        row = Announcement(
            title=data.title.strip(),
            body=data.body,
            url=data.url,
            image_url=data.image_url,
            extra=data.metadata or {},
            created_by=author_id,
        )
        self.repository.session.add(row)
        await self.repository.session.commit()
        await self.repository.session.refresh(row)
        return row

    async def since(self, moment: dt.datetime | None, limit: int) -> list[Announcement]:
        """Newest first; all of them when `moment` is None."""
        statement = select(Announcement).order_by(Announcement.created_at.desc(), Announcement.id.desc())
        if moment is not None:
            statement = statement.where(Announcement.created_at > moment)
        return list((await self.repository.session.scalars(statement.limit(limit))).all())

    async def missed_by(self, user_id: uuid.UUID, now: dt.datetime) -> list[Announcement]:
        """Those created since the user was last seen (never seen: the last 7 days), one query."""
        last_seen: Any = select(User.last_seen_at).where(User.id == user_id).scalar_subquery()
        week_ago = literal(now - NEW_USER_WINDOW, DateTimeUTC(timezone=True))
        statement = (
            select(Announcement)
            .where(Announcement.created_at > func.coalesce(last_seen, week_ago))
            .order_by(Announcement.created_at.desc(), Announcement.id.desc())
            .limit(SESSION_READY_CAP)
        )
        return list((await self.repository.session.scalars(statement)).all())
