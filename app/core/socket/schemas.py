"""Payloads of the socket core's own events."""

from __future__ import annotations

import msgspec

from app.config.settings import Settings
from app.core.types import UtcDateTime


class UserView(msgspec.Struct):
    id: str
    username: str
    display_name: str


class RateLimitView(msgspec.Struct):
    capacity: int
    per_seconds: float


class Limits(msgspec.Struct):
    """What a well-behaved client should stay within."""

    max_payload_bytes: int
    rate_limits: dict[str, RateLimitView]
    max_rooms: int
    typing_ttl: float
    presence_ttl: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        limits = settings.rate_limits
        return cls(
            max_payload_bytes=settings.socket.max_payload_bytes,
            rate_limits={
                name: RateLimitView(limit.capacity, limit.per_seconds)
                for name, limit in (
                    ("default", limits.default),
                    ("chat", limits.chat),
                    ("typing", limits.typing),
                )
            },
            max_rooms=settings.socket.max_rooms,
            typing_ttl=settings.typing_ttl,
            presence_ttl=settings.presence_ttl,
        )


class RefreshPayload(msgspec.Struct, forbid_unknown_fields=True):
    token: str = msgspec.field()


class RefreshAck(msgspec.Struct):
    expires_at: UtcDateTime
