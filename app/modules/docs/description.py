"""Step one of the docs pipeline: the gateway registry as a neutral description of the protocol.

Nothing here knows AsyncAPI, HTML or TypeScript; each of those is generated from a
:class:`ProtocolDescription`, so the three can never disagree about an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.config.settings import DocsInfo, RateLimitSettings
from app.core.errors import ErrorCode
from app.core.socket.decorators import EventSpec, RateBucket, ServerEvent
from app.core.socket.registry import EventRegistry

Direction = Literal["client_to_server", "server_to_client"]
DIRECTIONS: tuple[Direction, ...] = ("client_to_server", "server_to_client")

COMMON_ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode.VALIDATION_ERROR,
    ErrorCode.RATE_LIMITED,
    ErrorCode.PAYLOAD_TOO_LARGE,
    ErrorCode.UNAVAILABLE,
    ErrorCode.INTERNAL,
)
"""Codes the gateway itself may answer to any client event (validation, token buckets, size, a
database or Redis out of reach, a fault)."""


@dataclass(frozen=True, slots=True)
class RateLimitDoc:
    """The token bucket a client event draws from, with its size from the settings."""

    bucket: str
    capacity: int
    per_seconds: float

    def __str__(self) -> str:
        return f"{self.capacity} per {self.per_seconds:g}s ({self.bucket})"


@dataclass(frozen=True, slots=True)
class EventDoc:
    """One event in one direction; client events carry an ack, server events a destination room."""

    name: str
    direction: Direction
    category: str
    description: str
    payload: type[Any] | None
    """None: a client event that takes no payload (emitted with the ack callback alone)."""
    examples: tuple[Mapping[str, Any], ...]
    response: type[Any] | None = None
    declared_errors: tuple[ErrorCode, ...] = ()
    rate_limit: RateLimitDoc | None = None
    room: str | None = None
    room_required: str | None = None
    auth_required: bool = True
    optimistic: bool = False

    @property
    def is_client_event(self) -> bool:
        return self.direction == "client_to_server"

    @property
    def error_codes(self) -> tuple[ErrorCode, ...]:
        """The declared codes first, then those every client event may get; none for server events."""
        if not self.is_client_event:
            return ()
        return tuple(dict.fromkeys((*self.declared_errors, *COMMON_ERRORS)))

    @property
    def key(self) -> str:
        """A stable identifier unique across both directions, e.g. `client.room.join`."""
        side = "client" if self.is_client_event else "server"
        return f"{side}.{self.name.replace(':', '.')}"


@dataclass(frozen=True, slots=True)
class ProtocolDescription:
    title: str
    version: str
    server_url: str
    events: tuple[EventDoc, ...]
    info: DocsInfo

    def by_category(self) -> dict[str, list[EventDoc]]:
        grouped: dict[str, list[EventDoc]] = {}
        for event in self.events:
            grouped.setdefault(event.category, []).append(event)
        return grouped

    def named(self, name: str) -> list[EventDoc]:
        """Both directions of `name` (an event such as `chat:read` exists in each)."""
        return [event for event in self.events if event.name == name]

    def client_events(self) -> list[EventDoc]:
        return [event for event in self.events if event.is_client_event]

    def server_events(self) -> list[EventDoc]:
        return [event for event in self.events if not event.is_client_event]


def _rate_limit(bucket: RateBucket, limits: RateLimitSettings) -> RateLimitDoc:
    limit = bucket.size(limits)
    return RateLimitDoc(bucket.name, limit.capacity, limit.per_seconds)


def describe_client_event(spec: EventSpec, limits: RateLimitSettings) -> EventDoc:
    return EventDoc(
        name=spec.name,
        direction="client_to_server",
        category=spec.category,
        description=spec.description,
        payload=spec.payload,
        examples=spec.examples,
        response=spec.response,
        declared_errors=spec.errors,
        rate_limit=_rate_limit(spec.rate_limit, limits) if limits.enabled else None,
        room_required=spec.room_required,
        auth_required=spec.auth_required,
        optimistic=spec.optimistic,
    )


def describe_server_event(event: ServerEvent) -> EventDoc:
    return EventDoc(
        name=event.name,
        direction="server_to_client",
        category=event.category,
        description=event.description,
        payload=event.payload,
        examples=event.examples,
        room=event.room,
    )


def _ordered(events: Iterable[EventDoc]) -> tuple[EventDoc, ...]:
    return tuple(sorted(events, key=lambda e: (e.category, DIRECTIONS.index(e.direction), e.name)))


def describe(
    registry: EventRegistry,
    *,
    title: str,
    version: str,
    server_url: str,
    rate_limits: RateLimitSettings,
    info: DocsInfo,
) -> ProtocolDescription:
    """Every registered event, ordered by category, then direction, then name."""
    events = [
        *(describe_client_event(spec, rate_limits) for spec in registry.client_events.values()),
        *(describe_server_event(event) for event in registry.server_events.values()),
    ]
    return ProtocolDescription(title, version, server_url.rstrip("/"), _ordered(events), info)
