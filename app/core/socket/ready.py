"""`session:ready`: the core's fields plus one field per module part, composed into one typed Struct.

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

from app.core.socket.decorators import ServerEvent, server_event
from app.core.socket.schemas import Limits, UserView
from app.core.types import UtcDateTime

if TYPE_CHECKING:
    from app.core.context import AppContext
    from app.core.security.identity import Identity

SESSION_READY = "session:ready"
_USER = "00000000-0000-4000-8000-000000000001"
_BASE_EXAMPLE: dict[str, Any] = {
    "user": {"id": _USER, "username": "alice", "display_name": "Alice"},
    "session_id": "2f9c1d7e-6a4b-4c1e-9b0a-3e5d7c9a1b2c",
    "rooms": [f"user:{_USER}", "broadcast:all"],
    "server_time": "2026-11-22T09:00:00Z",
}
_LIMITS_EXAMPLE: dict[str, Any] = {
    "max_payload_bytes": 65536,
    "rate_limits": {"default": {"capacity": 30, "per_seconds": 1}},
    "max_rooms": 500,
    "typing_ttl": 6,
    "presence_ttl": 30,
}


@dataclass(frozen=True, slots=True)
class ReadyPart:
    """One field of `session:ready` filled by a module.

    `produce` computes it for the connecting identity; `schema` is its type (`fallback`, sent when
    `produce` fails, must fit it); `example` shows it in the docs.
    """

    produce: Callable[[AppContext, Identity], Awaitable[Any]]
    schema: Any
    description: str
    example: Any
    fallback: Any = None


def _described(kind: Any, description: str) -> Any:
    return Annotated[kind, msgspec.Meta(description=description)]


def _fields(parts: Mapping[str, ReadyPart]) -> list[tuple[str, Any]]:
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
        ("limits", _described(Limits, "What a well-behaved client stays within.")),
    ]


@dataclass(frozen=True, slots=True)
class SessionReadyShape:
    """The composed payload type, its parts, and the declared server event."""

    payload_type: type[msgspec.Struct]
    parts: Mapping[str, ReadyPart]
    event: ServerEvent

    def payload(self, base: Mapping[str, Any], produced: Mapping[str, Any], limits: Limits) -> msgspec.Struct:
        """The event: `base` (the core's fields), each part's value (its fallback when missing)."""
        values = {key: produced.get(key, part.fallback) for key, part in self.parts.items()}
        return self.payload_type(**base, **values, limits=limits)


def compose_session_ready(contributions: Sequence[tuple[str, Mapping[str, ReadyPart]]]) -> SessionReadyShape:
    """One Struct from the core's fields and every module's parts (module name, its parts), in order.

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
    payload_type = msgspec.defstruct("SessionReady", _fields(parts), module=__name__, omit_defaults=False)
    payload_type.__doc__ = "Everything a client needs right after connecting."
    example = {
        **_BASE_EXAMPLE,
        **{key: part.example for key, part in parts.items()},
        "limits": _LIMITS_EXAMPLE,
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
    return SessionReadyShape(payload_type, parts, event)
