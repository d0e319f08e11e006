"""Wire shapes shared by every event: acks, the `exception` event and `force_logout`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from app.core.errors import AppError

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

ForceLogoutReason = Literal["duplicate_login", "logout", "token_expired", "admin", "session_revoked"]


class ErrorBody(msgspec.Struct, omit_defaults=True):
    code: str
    message: str
    details: dict[str, Any] | None = None


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


class RoomPayload(msgspec.Struct, forbid_unknown_fields=True):
    room: RoomName


class RoomAck(msgspec.Struct):
    room: str


class Empty(msgspec.Struct):
    """An ack with no data."""
