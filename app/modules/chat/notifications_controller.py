"""`/api/notifications`: your notifications in pages, and marking them read."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, put
from litestar.params import Parameter

from app.core.http.envelope import Envelope, ok
from app.core.security.identity import Identity
from app.modules.chat.controller import PAGE_DEFAULT, PAGE_MAX
from app.modules.chat.schemas import MarkNotificationsReadIn, NotificationPage, NotificationsRead
from app.modules.chat.service import ChatService


class NotificationController(Controller):
    path = "/api/notifications"
    tags = ["notifications"]

    @get("/", summary="Your notifications")
    async def list_notifications(
        self,
        identity: Identity,
        chat_service: ChatService,
        limit: Annotated[int, Parameter(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        unread_only: bool = False,
    ) -> Envelope[NotificationPage]:
        """Newest first, each with `read_at` (null while unread); `next_cursor` gives the next page."""
        return ok(await chat_service.notifications(identity.user_id, limit, cursor, unread_only))

    @put("/read", summary="Mark notifications read")
    async def mark_read(
        self, data: MarkNotificationsReadIn, identity: Identity, chat_service: ChatService
    ) -> Envelope[NotificationsRead]:
        """Mark `up_to_id` and every older notification of yours read; answers how many, and how many
        stay unread (the count `session:ready` shows)."""
        return ok(await chat_service.mark_notifications_read(identity.user_id, data.up_to_id))
