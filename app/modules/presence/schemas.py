"""Payloads of presence and typing events."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from app.core.types import UtcDateTime

MAX_PRESENCE_IDS = 100

Status = Annotated[Literal["online", "offline"], msgspec.Meta(title="PresenceStatus")]
UserIds = Annotated[
    list[uuid.UUID],
    msgspec.Meta(min_length=1, max_length=MAX_PRESENCE_IDS, description="user ids (UUIDs), at most 100"),
]


class UserStatus(msgspec.Struct):
    """`last_seen_at` is when the user last went offline (null if never); it does not move while online."""

    user_id: str
    status: Status
    last_seen_at: UtcDateTime | None


class PresenceSubscribeIn(msgspec.Struct, forbid_unknown_fields=True):
    user_ids: UserIds


class PresenceStatuses(msgspec.Struct):
    """The statuses of the users the caller may see; others are left out."""

    statuses: list[UserStatus]


class TypingIn(msgspec.Struct, forbid_unknown_fields=True):
    conversation_id: uuid.UUID
    typing: bool


class TypingAck(msgspec.Struct):
    """Empty: a typing event is acknowledged whether or not it was re-broadcast."""


class TypingOut(msgspec.Struct):
    conversation_id: str
    user_id: str
    typing: bool
    expires_in: float
