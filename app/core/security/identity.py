"""Who is calling, over HTTP or a socket, and the one interface that establishes it."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller. Over a socket it is fixed at the handshake; `auth:refresh` only extends it.

    `user_id` is the users row's key as it is; room names, state keys and payloads write it as text."""

    user_id: uuid.UUID
    session_id: str | None
    expires_at: dt.datetime
    username: str
    display_name: str
    is_admin: bool = False


class Authenticator(Protocol):
    """Turns a bearer token into an Identity, or raises AppError.

    The codes: UNAUTHORIZED, TOKEN_EXPIRED, SESSION_REVOKED.
    """

    async def authenticate(self, token: str) -> Identity: ...
