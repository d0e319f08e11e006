"""The announcement event, declared on a gateway so that the docs list it."""

from __future__ import annotations

from app.core.socket import Gateway, server_event
from app.modules.announcements.schemas import AnnouncementOut

SYSTEM_ANNOUNCEMENT = server_event(
    "system:announcement",
    AnnouncementOut,
    description="An administrator's announcement, live on every node. Those made while you were away "
    "arrive in `session:ready.announcements`.",
    category="system",
    room="broadcast:all",
    examples=[
        {
            "id": "00000000-0000-4000-8000-0000000000a1",
            "title": "Maintenance tonight",
            "body": "Parley restarts at 22:00 UTC for about a minute.",
            "url": "https://status.example.com",
            "image_url": None,
            "metadata": {"severity": "info"},
            "created_at": "2026-11-22T09:00:00Z",
        }
    ],
)


class AnnouncementsGateway(Gateway):
    """No client events: announcements are made over REST and only emitted here."""

    emits = (SYSTEM_ANNOUNCEMENT,)
