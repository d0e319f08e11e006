"""Request and response bodies of the accounts API."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.core.types import UtcDateTime
from app.modules.accounts.models import DISPLAY_NAME_MAX, USERNAME_MAX

Username = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=USERNAME_MAX,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="3–32 letters, digits, `_`, `.` or `-`; unique regardless of case",
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=DISPLAY_NAME_MAX)]
Device = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, description="names the device for LOGIN_POLICY")
]


class RegisterIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=USERNAME_MAX)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    device: Device | None = None


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class UserOut(msgspec.Struct):
    id: str
    username: str
    display_name: str


class MeOut(msgspec.Struct):
    id: str
    username: str
    display_name: str
    is_admin: bool
    session_id: str | None
    created_at: UtcDateTime
    last_seen_at: UtcDateTime | None


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    session_id: str
    user: UserOut


class ForceLogoutOut(msgspec.Struct):
    user_id: str
    revoked_sessions: int
