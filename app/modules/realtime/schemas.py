"""Payloads of the realtime module's events."""

from __future__ import annotations

import msgspec

from app.core.types import UtcDateTime


class AuthRefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    token: str = msgspec.field()


class RefreshAck(msgspec.Struct):
    expires_at: UtcDateTime
