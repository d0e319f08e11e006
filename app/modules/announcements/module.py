"""The announcements module: admin announcements, live and in `session:ready`."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator

from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import AppContext
from app.core.module import Module
from app.core.security.identity import Identity
from app.core.socket.ready import ReadyPart
from app.modules.announcements.controller import AdminAnnouncementsController, AnnouncementsController
from app.modules.announcements.declarations import AnnouncementsGateway
from app.modules.announcements.schemas import AnnouncementOut
from app.modules.announcements.seen import AnnouncementsSeen
from app.modules.announcements.service import AnnouncementService, announcement_out


async def provide_announcement_service(db_session: AsyncSession) -> AsyncGenerator[AnnouncementService, None]:
    async with AnnouncementService.new(session=db_session) as service:
        yield service


async def missed_announcements(ctx: AppContext, identity: Identity) -> list[AnnouncementOut]:
    if not await ctx.get(AnnouncementsSeen).any():
        return []
    async with ctx.unit_of_work() as uow:
        rows = await uow.service(AnnouncementService).missed_by(identity.user_id, dt.datetime.now(dt.UTC))
    return [announcement_out(row) for row in rows]


async def _start(ctx: AppContext) -> None:
    await ctx.get(AnnouncementsSeen).start()


announcements_module = Module(
    name="announcements",
    controllers=[AdminAnnouncementsController, AnnouncementsController],
    gateways=[AnnouncementsGateway],
    dependencies={"announcement_service": Provide(provide_announcement_service)},
    providers={AnnouncementsSeen: AnnouncementsSeen},
    on_startup=[_start],
    session_ready={
        "announcements": ReadyPart(
            missed_announcements,
            list[AnnouncementOut],
            "Announcements made since the user was last seen (a new user: those of the last 7 days).",
            example=[
                {
                    "id": "5c3b2a19-8e7d-4f6c-9b5a-4d3c2b1a0f9e",
                    "title": "Maintenance tonight",
                    "body": "Chat is read-only from 22:00 to 22:15 UTC.",
                    "url": None,
                    "image_url": None,
                    "metadata": {},
                    "created_at": "2026-11-22T08:00:00Z",
                }
            ],
            fallback=[],
        )
    },
)
