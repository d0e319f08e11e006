"""`session:ready`: the core's fields plus one field per module part, composed into one typed Struct.

Its `limits` are composed the same way: the core's own (payload size, rate limits by bucket, rooms)
and those a module declares by a :class:`LimitPart` read from the settings.

A module contributes a field by declaring a :class:`ReadyPart` (how to compute it, its type, an
example, and what is sent if computing it fails). The composed Struct encodes the event and is the
payload the docs describe, so the page, the AsyncAPI document and the client types show the real
shape of every part, whichever modules an application lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from app.config.settings import Settings
from app.core.socket.decorators import DEFAULT_BUCKET, RateBucket, ServerEvent, server_event
from app.core.socket.rooms import BROADCAST_ROOMS, USER_ROOMS
from app.core.socket.schemas import RateLimitView, UserView
from app.core.types import UtcDateTime

if TYPE_CHECKING:
    from app.core.context import AppContext
    from app.core.security.identity import Identity

SESSION_READY = "session:ready"
_USER = "00000000-0000-4000-8000-000000000001"
_BASE_EXAMPLE: dict[str, Any] = {
    "user": {"id": _USER, "username": "alice", "display_name": "Alice"},
    "session_id": "2f9c1d7e-6a4b-4c1e-9b0a-3e5d7c9a1b2c",
    "rooms": [USER_ROOMS.room(_USER), BROADCAST_ROOMS.room("all")],
    "server_time": "2026-11-22T09:00:00Z",
}
_LIMITS_EXAMPLE: dict[str, Any] = {
    "max_payload_bytes": 65536,
    "rate_limits": {"default": {"capacity": 30, "per_seconds": 1}},
    "max_rooms": 500,
}
_CORE_LIMITS: list[tuple[str, Any]] = [
    ("max_payload_bytes", int),
    ("rate_limits", dict[str, RateLimitView]),
    ("max_rooms", int),
]


@dataclass(frozen=True, slots=True)
class ReadyPart:
    """One field of `session:ready` filled by a module.

    `produce` computes it for the connecting identity; `schema` is its type (`fallback`, sent when
    `produce` fails, must fit it); `example` shows it in the docs. `produce` only reads: its units of
    work share one read-only session (`AppContext.shared_unit_of_work(read_only=True)`).
    """

    produce: Callable[[AppContext, Identity], Awaitable[Any]]
    schema: Any
    description: str
    example: Any
    fallback: Any = None


@dataclass(frozen=True, slots=True)
class LimitPart:
    """One field of `session:ready.limits` given by a module: `read` from the settings once, of type
    `schema`; `example` shows it in the docs."""

    read: Callable[[Settings], Any]
    schema: Any
    example: Any


def _described(kind: Any, description: str) -> Any:
    return Annotated[kind, msgspec.Meta(description=description)]


def _fields(parts: Mapping[str, ReadyPart], limits: type[msgspec.Struct]) -> list[tuple[str, Any]]:
    return [
        ("user", _described(UserView, "The user this socket belongs to.")),
        (
            "session_id",
            _described(
                str | None, "The login session of the token; null for an external token without `sid`."
            ),
        ),
        ("rooms", _described(list[str], "Every room the socket is in right now.")),
        ("server_time", _described(UtcDateTime, "The server's clock, to correct for a skewed client clock.")),
        *((key, _described(part.schema, part.description)) for key, part in parts.items()),
        ("limits", _described(limits, "What a well-behaved client stays within.")),
    ]


@dataclass(frozen=True, slots=True)
class SessionReadyShape:
    """The composed payload type, its parts, its limits, and the declared server event."""

    payload_type: type[msgspec.Struct]
    parts: Mapping[str, ReadyPart]
    limits_type: type[msgspec.Struct]
    limit_parts: Mapping[str, LimitPart]
    event: ServerEvent

    def limits(self, settings: Settings, buckets: Sequence[RateBucket]) -> msgspec.Struct:
        """The limits under `settings`: the size of the `default` bucket and of each of `buckets`."""
        sizes = {bucket.name: bucket.size(settings.rate_limits) for bucket in (DEFAULT_BUCKET, *buckets)}
        return self.limits_type(
            max_payload_bytes=settings.socket.max_payload_bytes,
            rate_limits={
                name: RateLimitView(limit.capacity, limit.per_seconds) for name, limit in sizes.items()
            },
            max_rooms=settings.socket.max_rooms,
            **{key: part.read(settings) for key, part in self.limit_parts.items()},
        )

    def payload(
        self, base: Mapping[str, Any], produced: Mapping[str, Any], limits: msgspec.Struct
    ) -> msgspec.Struct:
        """The event: `base` (the core's fields), each part's value (its fallback when missing)."""
        values = {key: produced.get(key, part.fallback) for key, part in self.parts.items()}
        return self.payload_type(**base, **values, limits=limits)


def compose_limits(contributions: Sequence[tuple[str, Mapping[str, LimitPart]]]) -> type[msgspec.Struct]:
    """The `Limits` Struct: the core's fields, then every module's parts (module name, its parts)."""
    fields: list[tuple[str, Any]] = list(_CORE_LIMITS)
    for module, contributed in contributions:
        for key, part in contributed.items():
            if key in dict(fields):
                raise ValueError(f"limit {key!r} of module {module} is already taken")
            fields.append((key, part.schema))
    limits = msgspec.defstruct("Limits", fields, module=__name__)
    limits.__doc__ = "What a well-behaved client should stay within."
    return limits


def compose_session_ready(
    contributions: Sequence[tuple[str, Mapping[str, ReadyPart]]],
    limit_contributions: Sequence[tuple[str, Mapping[str, LimitPart]]] = (),
) -> SessionReadyShape:
    """One Struct from the core's fields and every module's parts (module name, its parts), in order;
    its `limits` likewise from the core's and the modules' limit parts.

    Raises `ValueError` when two modules contribute the same key or a fallback does not fit its type.
    """
    parts: dict[str, ReadyPart] = {}
    for module, contributed in contributions:
        for key, part in contributed.items():
            if key in parts or key in {"user", "session_id", "rooms", "server_time", "limits"}:
                raise ValueError(f"session:ready field {key!r} of module {module} is already taken")
            try:
                msgspec.convert(msgspec.to_builtins(part.fallback), part.schema)
            except msgspec.ValidationError as exc:
                raise ValueError(f"session:ready field {key!r}: its fallback does not fit: {exc}") from None
            parts[key] = part
    limit_parts = {key: part for _, contributed in limit_contributions for key, part in contributed.items()}
    limits = compose_limits(limit_contributions)
    fields = _fields(parts, limits)
    payload_type = msgspec.defstruct("SessionReady", fields, module=__name__, omit_defaults=False)
    payload_type.__doc__ = "Everything a client needs right after connecting."
    example = {
        **_BASE_EXAMPLE,
        **{key: part.example for key, part in parts.items()},
        "limits": {**_LIMITS_EXAMPLE, **{key: part.example for key, part in limit_parts.items()}},
    }
    event = server_event(
        SESSION_READY,
        payload_type,
        description="Sent once, right after connect: who you are, your rooms, the server's clock, "
        "what the modules add (such as unread counts and missed announcements) and the limits.",
        category="session",
        room="the connecting socket",
        examples=[example],
    )
    return SessionReadyShape(payload_type, parts, limits, limit_parts, event)
