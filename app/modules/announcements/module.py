"""The announcements module: admin announcements, live and in `session:ready`."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator

from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.core.module import Module
from app.core.security.identity import Identity
from app.modules.announcements.controller import AdminAnnouncementsController, AnnouncementsController
from app.modules.announcements.events import AnnouncementsGateway
from app.modules.announcements.schemas import AnnouncementOut
from app.modules.announcements.service import AnnouncementService, announcement_out


async def provide_announcement_service(db_session: AsyncSession) -> AsyncGenerator[AnnouncementService, None]:
    async with AnnouncementService.new(session=db_session) as service:
        yield service


async def missed_announcements(ctx: AppContext, identity: Identity) -> list[AnnouncementOut]:
    async with ctx.unit_of_work() as uow:
        rows = await uow.service(AnnouncementService).missed_by(identity.user_id, dt.datetime.now(dt.UTC))
    return [announcement_out(row) for row in rows]


announcements_module = Module(
    name="announcements",
    controllers=[AdminAnnouncementsController, AnnouncementsController],
    gateways=[AnnouncementsGateway],
    dependencies={"announcement_service": Provide(provide_announcement_service)},
    session_ready={"announcements": missed_announcements},
)
