"""Security events other modules act on (the socket layer disconnects revoked sessions)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

RevocationReason = Literal["duplicate_login", "logout", "admin", "session_revoked"]


@dataclass(frozen=True, slots=True)
class SessionsRevoked:
    """These sessions of `user_id` are no longer valid; their sockets must go, on every node."""

    user_id: uuid.UUID
    session_ids: tuple[str, ...]
    reason: RevocationReason
    message: str
    all_sockets: bool = False
    """Also disconnect every socket of the user, those authenticated without a session (external
    tokens) included."""
