"""Wire shapes shared by every event: acks, and the events the core itself emits to any client.

`FORCE_LOGOUT` and `EXCEPTION` are declared here, once: the core emits them by these declarations
and documents them through `CORE_EVENTS` (`session:ready`, composed from the modules, is in `ready`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from app.core.errors import AppError, ErrorDetails
from app.core.socket.decorators import ServerEvent, server_event

ROOM_NAME_MAX = 128
RoomName = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=ROOM_NAME_MAX,
        pattern=r"^[a-z][a-z0-9_-]*:[A-Za-z0-9_.:@-]+(?![\s\S])",
        description="`prefix:id`, e.g. `user:…`, `group:…`, `game:42`",
    ),
]


@dataclass(frozen=True, slots=True)
class ReasonDoc:
    """What a `force_logout` reason means, and what a client should do about it."""

    meaning: str
    action: str


ForceLogoutReason = Annotated[
    Literal["duplicate_login", "logout", "token_expired", "admin", "session_revoked"],
    msgspec.Meta(title="ForceLogoutReason"),
]

FORCE_LOGOUT_REASONS: dict[str, ReasonDoc] = {
    "duplicate_login": ReasonDoc(
        "A newer login of the same user replaced this session (`LOGIN_POLICY`: `single`, or "
        "`single_per_device` with the same `device`).",
        "Do not log in again by itself (two clients would replace each other for ever): tell the user "
        "they signed in elsewhere and offer to log in here.",
    ),
    "logout": ReasonDoc(
        "The session logged out (`POST /api/auth/logout`), perhaps in another tab.",
        "Forget the tokens and show the login screen.",
    ),
    "token_expired": ReasonDoc(
        "The access token expired before the socket sent `auth:refresh` with a new one.",
        "Get a new pair with `POST /api/auth/refresh` and reconnect with it; send `auth:refresh` before "
        "the next expiry.",
    ),
    "admin": ReasonDoc(
        "An administrator signed the user out of every session.",
        "Forget the tokens and show the login screen.",
    ),
    "session_revoked": ReasonDoc(
        "The session was revoked for another reason, such as a rotated refresh token used again.",
        "Forget the tokens and log in again.",
    ),
}
"""Per `force_logout` reason: what happened, and what a client should do."""


class ErrorBody(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    details: ErrorDetails | None = None


class AckError(msgspec.Struct, omit_defaults=True):
    """A failed event: the code says why; `action: ROLLBACK` asks the client to undo an optimistic update."""

    ok: Literal[False]
    error: ErrorBody
    action: Literal["ROLLBACK"] | None = None

    @classmethod
    def of(cls, error: AppError) -> AckError:
        return cls(
            ok=False,
            error=ErrorBody(error.code.value, error.message, error.details),
            action="ROLLBACK" if error.rollback else None,
        )


class AckOk(msgspec.Struct):
    ok: Literal[True]
    data: Any


EVENT_NAME_ECHO_MAX = 100
"""How much of a client-chosen event name is echoed back in an answer."""


class ExceptionEvent(msgspec.Struct):
    """Sent instead of an ack when the client emitted without an ack callback."""

    event: str
    code: str
    message: str

    @classmethod
    def of(cls, event: str, error: AppError) -> ExceptionEvent:
        return cls(event[:EVENT_NAME_ECHO_MAX], error.code.value, error.message)


class ForceLogout(msgspec.Struct):
    reason: ForceLogoutReason
    message: str


FORCE_LOGOUT = server_event(
    "force_logout",
    ForceLogout,
    description="Your session ended (another login, logout, expiry, an admin); "
    "the socket is disconnected right after.",
    category="session",
    room="session:{sessionId} or user:{userId}",
    examples=[{"reason": "duplicate_login", "message": "You logged in somewhere else"}],
)
EXCEPTION = server_event(
    "exception",
    ExceptionEvent,
    description="The failure of an event emitted without an ack callback.",
    category="session",
    room="the emitting socket",
    examples=[{"event": "chat:send", "code": "VALIDATION_ERROR", "message": "body: Expected `str`"}],
)
CORE_EVENTS: tuple[ServerEvent, ...] = (FORCE_LOGOUT, EXCEPTION)


class RoomIn(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName


class RoomAck(msgspec.Struct):
    room: str
