"""Whether any announcement exists, as this node knows it: until one does, `session:ready` needs no
query for the announcements a user missed.

Announcements are never deleted, so once one exists the answer stays yes. Publishing one says so on
this node and signals every node before its row is written, so a node that answers no has not yet
been able to see the row either. A node that has not heard of one looks in the database again every
`LOOK_AGAIN` seconds, so a signal lost while Redis was unreachable misleads it no longer than that.
"""

from __future__ import annotations

import time

from sqlalchemy import exists, select

from app.core.context import AppContext
from app.modules.announcements.models import Announcement

CHANNEL = "announcement_published"
LOOK_AGAIN = 5.0
"""Seconds a node trusts that no announcement exists before it looks in the database again."""


class AnnouncementsSeen:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._some = False
        self._looked = float("-inf")

    async def start(self) -> None:
        await self.ctx.state.subscribe(CHANNEL, self._heard)

    async def _heard(self, _raw: bytes) -> None:
        self._some = True

    async def announcing(self) -> None:
        """Called before an announcement is written: from now on every node asks the database."""
        self._some = True
        await self.ctx.state.publish(CHANNEL, b"1")

    async def any(self) -> bool:
        """False only while no announcement exists (as of at most `LOOK_AGAIN` seconds ago)."""
        if self._some:
            return True
        now = time.monotonic()
        if now - self._looked < LOOK_AGAIN:
            return False
        async with self.ctx.unit_of_work() as uow:
            self._some = bool(await uow.session.scalar(select(exists().where(Announcement.id.is_not(None)))))
        self._looked = now
        return self._some
