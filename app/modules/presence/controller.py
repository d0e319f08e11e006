"""`GET /api/presence`: the statuses of users the caller may see."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter

from app.core.context import AppContext
from app.core.errors import AppError, ErrorCode
from app.core.http.envelope import Envelope, ok
from app.core.security.identity import Identity
from app.modules.presence.presence import Presence
from app.modules.presence.schemas import MAX_PRESENCE_IDS, PresenceStatuses
from app.modules.presence.service import LastSeenService


def parse_user_ids(values: list[str]) -> list[str]:
    """`?user_ids=a,b` and `?user_ids=a&user_ids=b` alike; VALIDATION_ERROR for a malformed or long list."""
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not parts or len(parts) > MAX_PRESENCE_IDS:
        raise AppError(
            ErrorCode.VALIDATION_ERROR,
            f"user_ids: give 1 to {MAX_PRESENCE_IDS} user ids",
            {"field": "user_ids"},
        )
    try:
        return list(dict.fromkeys(str(uuid.UUID(part)) for part in parts))
    except ValueError:
        raise AppError(
            ErrorCode.VALIDATION_ERROR, "user_ids: every id must be a UUID", {"field": "user_ids"}
        ) from None


class PresenceController(Controller):
    path = "/api/presence"
    tags = ["presence"]

    @get("/", summary="Presence of users")
    async def statuses(
        self,
        identity: Identity,
        app_ctx: AppContext,
        last_seen_service: LastSeenService,
        user_ids: Annotated[list[str], Parameter(description="comma-separated or repeated user ids")],
    ) -> Envelope[PresenceStatuses]:
        presence = app_ctx.get(Presence)
        visible = await presence.visible_to(identity.user_id, parse_user_ids(user_ids))
        return ok(PresenceStatuses(await presence.statuses(last_seen_service, visible)))
