"""Request and response bodies of the accounts API."""

from __future__ import annotations

from typing import Annotated

import msgspec

from app.core.text import SINGLE_LINE, TRIMMED, USERNAME, text
from app.core.types import UtcDateTime
from app.modules.accounts.models import DISPLAY_NAME_MAX, USERNAME_MAX

PASSWORD_MIN = 8
PASSWORD_MAX = 128
Username = Annotated[
    str,
    text(
        USERNAME,
        min_length=3,
        max_length=USERNAME_MAX,
        description="unique regardless of case, and must not look like another user's name",
    ),
]
Password = Annotated[
    str,
    text(
        SINGLE_LINE,
        min_length=PASSWORD_MIN,
        max_length=PASSWORD_MAX,
        description="not a common password, nor the username",
    ),
]
DisplayName = Annotated[str, text(TRIMMED, max_length=DISPLAY_NAME_MAX)]
Device = Annotated[str, text(TRIMMED, max_length=64, description="names the device for LOGIN_POLICY")]


class RegisterIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    password: Password
    display_name: DisplayName | None = None


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, text(USERNAME, max_length=USERNAME_MAX)]
    password: Annotated[str, text(SINGLE_LINE, max_length=PASSWORD_MAX)]
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
