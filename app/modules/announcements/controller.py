"""`POST /api/admin/announcements` (admins) and `GET /api/announcements`."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from app.core.context import AppContext
from app.core.http.envelope import Envelope, ok
from app.core.security.identity import Identity
from app.core.types import utc_moment
from app.modules.announcements.declarations import SYSTEM_ANNOUNCEMENT
from app.modules.announcements.schemas import AnnouncementIn, AnnouncementList, AnnouncementOut
from app.modules.announcements.seen import AnnouncementsSeen
from app.modules.announcements.service import AnnouncementService, announcement_out

logger = logging.getLogger(__name__)
SINCE = "only those created after this moment (ISO 8601; UTC when it has no offset)"


class AdminAnnouncementsController(Controller):
    path = "/api/admin/announcements"
    tags = ["admin"]

    @post("/", status_code=HTTP_201_CREATED, summary="Publish an announcement (admin)")
    async def publish(
        self,
        data: AnnouncementIn,
        admin: Identity,
        app_ctx: AppContext,
        announcement_service: AnnouncementService,
    ) -> Envelope[AnnouncementOut]:
        await app_ctx.get(AnnouncementsSeen).announcing()
        announcement = announcement_out(await announcement_service.publish(data, admin.user_id))
        await app_ctx.hub.emit(SYSTEM_ANNOUNCEMENT, announcement, room="broadcast:all")
        logger.info("admin %s announced %s", admin.user_id, announcement.id, extra={"user_id": admin.user_id})
        return ok(announcement, "Announced")


class AnnouncementsController(Controller):
    path = "/api/announcements"
    tags = ["announcements"]

    @get("/", summary="Announcements since a time")
    async def since(
        self,
        identity: Identity,  # noqa: ARG002 - signed-in users only
        announcement_service: AnnouncementService,
        since: Annotated[dt.datetime | None, Parameter(description=SINCE)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> Envelope[AnnouncementList]:
        moment = utc_moment(since, "since") if since is not None else None
        rows = await announcement_service.since(moment, limit)
        return ok(AnnouncementList([announcement_out(row) for row in rows]))
