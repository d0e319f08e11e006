"""One error vocabulary for HTTP and sockets (SPEC §5 error codes), and its reference.

`ERROR_REFERENCE` is the one description of every code: the `/ws-docs` page, the AsyncAPI document
and the OpenAPI document all read it, so a code cannot be documented in two different ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, TypedDict

import msgspec


class ErrorCode(StrEnum):
    UNAUTHORIZED = "UNAUTHORIZED"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    SESSION_REVOKED = "SESSION_REVOKED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    RATE_LIMITED = "RATE_LIMITED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    CONFLICT = "CONFLICT"
    MESSAGE_SEND_FAILED = "MESSAGE_SEND_FAILED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.SESSION_REVOKED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.CONFLICT: 409,
    ErrorCode.MESSAGE_SEND_FAILED: 500,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}


class ErrorDetails(TypedDict, total=False):
    """Extra facts of a failure, by name; the error reference says which ones each code carries."""

    field: Annotated[
        str | None,
        msgspec.Meta(
            description="The offending field as a dotted path (`participant_ids.0`); null when the body "
            "could not be read at all."
        ),
    ]
    errors: Annotated[
        list[dict[str, Any]],
        msgspec.Meta(description="REST only: every problem found, each `{key, message, source}`."),
    ]
    unknown: Annotated[list[str], msgspec.Meta(description="The given user ids that name no user.")]
    retry_after: Annotated[
        float, msgspec.Meta(description="Seconds until the token bucket holds a token again.")
    ]
    limit: Annotated[
        str | int,
        msgspec.Meta(
            description="The limit that was reached: `CAPACITY/SECONDS` of a token bucket, or a count "
            "(rooms per socket, bytes per packet)."
        ),
    ]


class AppError(Exception):
    """An expected failure with a code a client can act on; its message is safe to show."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: ErrorDetails | None = None,
        *,
        rollback: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.rollback = rollback

    @property
    def status_code(self) -> int:
        return HTTP_STATUS[self.code]


def not_found(what: str) -> AppError:
    return AppError(ErrorCode.NOT_FOUND, f"{what} not found")


def forbidden(message: str = "You are not allowed to do that") -> AppError:
    return AppError(ErrorCode.FORBIDDEN, message)


def validation_error(field: str, message: str) -> AppError:
    return AppError(ErrorCode.VALIDATION_ERROR, f"{field}: {message}", {"field": field})


@dataclass(frozen=True, slots=True)
class ErrorDoc:
    """What a code means, when Parley answers it, what a client should do, and its `details`."""

    meaning: str
    when: str
    action: str
    details: tuple[str, ...] = ()


ERROR_REFERENCE: dict[ErrorCode, ErrorDoc] = {
    ErrorCode.UNAUTHORIZED: ErrorDoc(
        "No valid credentials.",
        "No token, a token with a bad signature, issuer or audience, a token of an unknown user, a wrong "
        "username or password at login, or a refresh token that is unknown or was already used.",
        "Log in again (`POST /api/auth/login`) and connect with the new access token; retrying with the "
        "same token gives the same answer.",
    ),
    ErrorCode.TOKEN_EXPIRED: ErrorDoc(
        "The access token's `exp` has passed.",
        "A REST call, a socket connect or `auth:refresh` with an expired access token.",
        "Get a new pair with `POST /api/auth/refresh` and your refresh token, then retry or reconnect "
        "with the new access token.",
    ),
    ErrorCode.SESSION_REVOKED: ErrorDoc(
        "The token's session has ended.",
        "The session logged out, was replaced by a newer login (`LOGIN_POLICY`), was signed out by an "
        "administrator, or was ended because a rotated refresh token was used again.",
        "Log in again: the session's refresh token no longer works either.",
    ),
    ErrorCode.FORBIDDEN: ErrorDoc(
        "Authenticated, but not allowed to do this.",
        "Reading or writing a conversation you are not a participant of, joining a room its hook "
        "refuses, managing participants without being owner or admin, an admin-only route, or "
        "`auth:refresh` with a token of another user or session.",
        "Do not retry: update the UI (the user lost access or never had it).",
    ),
    ErrorCode.NOT_FOUND: ErrorDoc(
        "The thing named does not exist.",
        "An unknown conversation, user, notification or route, or a socket event name no handler serves.",
        "Drop the reference (e.g. remove the conversation from the list); check an event name against "
        "`/ws-docs`.",
    ),
    ErrorCode.VALIDATION_ERROR: ErrorDoc(
        "The input does not fit the schema or the rules (HTTP 422; 400 when the body is not JSON).",
        "A missing or mistyped field, a text rule breach, a value out of range, JSON nested too deeply, "
        "unknown user ids in a conversation, or logging out a token that has no session.",
        "Fix the input and show `message` beside `details.field`; the same input gets the same answer.",
        ("field", "errors", "unknown"),
    ),
    ErrorCode.RATE_LIMITED: ErrorDoc(
        "Too much, too fast: a limit was reached.",
        "A token bucket is empty (socket events by class, REST writes, login and register attempts), "
        "too many events are in flight on one socket, a user holds `SOCKET_MAX_PER_USER` sockets "
        "(on connect), or a socket is in `SOCKET_MAX_ROOMS` rooms (`room:join`).",
        "With `details.retry_after` (REST also sends `Retry-After`), wait that long and send the same "
        "request again; without it, close a socket or leave a room first.",
        ("retry_after", "limit"),
    ),
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorDoc(
        "The packet or body is larger than the server accepts.",
        "A socket event over `SOCKET_MAX_PAYLOAD_BYTES`, or a REST body over its limit.",
        "Send less (a shorter body, fewer items per call); the same payload is refused again.",
        ("limit",),
    ),
    ErrorCode.CONFLICT: ErrorDoc(
        "The request collides with existing data or a concurrent change.",
        "A username that is taken or looks like another user's, or a conversation or membership that "
        "changed while the request ran.",
        "For a username, choose another; for a concurrent change, send the same request again "
        "(`chat:send` with the same `client_msg_id` stores nothing twice).",
        ("field",),
    ),
    ErrorCode.MESSAGE_SEND_FAILED: ErrorDoc(
        "A message could not be stored (reserved: Parley answers such failures with `UNAVAILABLE` or "
        "`INTERNAL` today).",
        "Not sent by this version.",
        "Keep the message in the outbox and send it again with the same `client_msg_id`.",
    ),
    ErrorCode.UNAVAILABLE: ErrorDoc(
        "A backing service (the database or Redis) cannot be reached, or the server cannot issue tokens.",
        "A connect or any event while PostgreSQL or Redis is down, a connect or `room:join` whose room's "
        "subscription Redis does not confirm in time, or a login on a server that only verifies "
        "tokens (no signing key).",
        "Retry with backoff; sends retry safely with the same `client_msg_id`.",
    ),
    ErrorCode.INTERNAL: ErrorDoc(
        "A fault on the server; it is logged there and nothing about it is sent.",
        "An unexpected failure of a handler.",
        "Retry once later; if it persists, report it with the time and the event.",
    ),
}

CONNECT_ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode.UNAUTHORIZED,
    ErrorCode.TOKEN_EXPIRED,
    ErrorCode.SESSION_REVOKED,
    ErrorCode.RATE_LIMITED,
    ErrorCode.UNAVAILABLE,
    ErrorCode.INTERNAL,
)
"""The codes a refused Socket.IO connection carries in `connect_error` (`{code, message}`)."""
