"""Payloads of the socket core's own events."""

from __future__ import annotations

import msgspec


class UserView(msgspec.Struct):
    id: str
    username: str
    display_name: str


class RateLimitView(msgspec.Struct):
    capacity: int
    per_seconds: float
