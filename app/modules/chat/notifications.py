"""Notifications (mentions) listed in pages and marked read."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, or_, select, update

from app.core.db import utc_now
from app.core.errors import not_found
from app.modules.chat.models import Notification
from app.modules.chat.read_state import ReadStates
from app.modules.chat.rows import decode_cursor, encode_cursor
from app.modules.chat.schemas import NotificationOut, NotificationPage, NotificationsRead

NOTIFICATION_COLUMNS = (
    Notification.id,
    Notification.kind,
    Notification.title,
    Notification.body,
    Notification.data,
    Notification.created_at,
    Notification.read_at,
)


def notification_out(row: Any) -> NotificationOut:
    return NotificationOut(
        id=str(row.id),
        kind=row.kind,
        title=row.title,
        body=row.body,
        data=row.data,
        created_at=row.created_at,
        read_at=row.read_at,
    )


def older_than(created_at: Any, notification_id: uuid.UUID, *, inclusive: bool) -> Any:
    """Notifications before (or at) a position of the newest-first order (created_at, id)."""
    same_time = Notification.id <= notification_id if inclusive else Notification.id < notification_id
    return or_(Notification.created_at < created_at, and_(Notification.created_at == created_at, same_time))


class Notifications(ReadStates):
    async def notifications(
        self, user_id: uuid.UUID, limit: int, cursor: str | None, unread_only: bool
    ) -> NotificationPage:
        """The user's notifications, newest first; pass `next_cursor` back for the next page."""
        statement = (
            select(*NOTIFICATION_COLUMNS)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit + 1)
        )
        if unread_only:
            statement = statement.where(Notification.read_at.is_(None))
        if cursor is not None:
            created_at, after_id = decode_cursor(cursor)
            statement = statement.where(older_than(created_at, after_id, inclusive=False))
        rows = list(await self.session.execute(statement))
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
        return NotificationPage(items=[notification_out(row) for row in page], next_cursor=next_cursor)

    async def mark_notifications_read(self, user_id: uuid.UUID, up_to: uuid.UUID) -> NotificationsRead:
        """Mark `up_to` and every older notification of the user read (`read_at` now); three statements."""
        stamp = await self.session.scalar(
            select(Notification.created_at).where(Notification.id == up_to, Notification.user_id == user_id)
        )
        if stamp is None:
            raise not_found("Notification")
        result = await self.session.execute(
            update(Notification)
            .where(
                Notification.user_id == user_id,
                Notification.read_at.is_(None),
                older_than(stamp, up_to, inclusive=True),
            )
            .values(read_at=utc_now())
            .execution_options(synchronize_session=False)
        )
        unread = await self.unread_notifications(user_id)
        await self.session.commit()
        return NotificationsRead(marked=int(getattr(result, "rowcount", 0) or 0), unread=unread)
