"""Who is calling, over HTTP or a socket, and the one interface that establishes it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified caller. Over a socket it is fixed at the handshake; `auth:refresh` only extends it."""

    user_id: str
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
