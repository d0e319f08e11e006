"""Decorators that make a gateway method an event handler, and declarations of server events.

A handler states its payload type once, as the annotation of its `payload` parameter; the gateway
reads it from the signature when the class is defined. A handler without a `payload` parameter
handles an event that takes no payload: clients emit it with nothing but the ack callback. The
metadata is the one description of the protocol: the dispatcher validates payloads with the same
Structs, and the docs (AsyncAPI, HTML page, TypeScript types) are generated from it.
Incomplete or inconsistent metadata raises `GatewayDefinitionError` when the gateway class is
defined, i.e. at import time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import msgspec

from app.core.errors import ErrorCode

if TYPE_CHECKING:
    from app.config.settings import RateLimit, RateLimitSettings

Direction = Literal["client_to_server", "server_to_client"]
F = TypeVar("F", bound=Callable[..., Any])
SPEC_ATTRIBUTE = "__ws_spec__"
EVENT_NAME_PATTERN = r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)*$"


class GatewayDefinitionError(TypeError):
    """A handler or event declaration is incomplete; raised at import time."""


@dataclass(frozen=True, slots=True)
class RateBucket:
    """A token bucket client events draw from, declared by the module that declares the events:
    its name (in acks' `details.limit`, the docs and `session:ready`) and the setting that sizes it."""

    name: str
    size: Callable[[RateLimitSettings], RateLimit]


DEFAULT_BUCKET = RateBucket("default", lambda limits: limits.default)
"""The bucket of every event that declares none (RATE_LIMIT_DEFAULT)."""


@dataclass(frozen=True, slots=True)
class EventSpec:
    """Everything known about one client→server event."""

    name: str = ""
    description: str = ""
    category: str = ""
    direction: Direction = "client_to_server"
    auth_required: bool = True
    room_required: str | None = None
    examples: tuple[Mapping[str, Any], ...] = ()
    errors: tuple[ErrorCode, ...] = ()
    rate_limit: RateBucket = DEFAULT_BUCKET
    optimistic: bool = False
    payload: type[msgspec.Struct] | None = None
    response: type[Any] | None = None
    response_event: str | None = None
    decorated: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """A server→client event: its payload Struct and the room it goes to."""

    name: str
    payload: type[msgspec.Struct]
    description: str
    category: str
    room: str
    examples: tuple[Mapping[str, Any], ...] = ()
    direction: Direction = "server_to_client"


def _update(func: F, decorator: str, **changes: Any) -> F:
    current: EventSpec = getattr(func, SPEC_ATTRIBUTE, EventSpec())
    if decorator in current.decorated:
        raise GatewayDefinitionError(f"{func.__qualname__}: @{decorator} applied twice")
    setattr(func, SPEC_ATTRIBUTE, replace(current, decorated=current.decorated | {decorator}, **changes))
    return func


def ws_event(
    name: str,
    description: str,
    *,
    category: str,
    direction: Direction = "client_to_server",
    auth_required: bool = True,
    room_required: str | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
    errors: Sequence[ErrorCode] = (),
    rate_limit: RateBucket = DEFAULT_BUCKET,
    optimistic: bool = False,
) -> Callable[[F], F]:
    """Mark a gateway method as the handler of client event `name`.

    `rate_limit` is the token bucket the event draws from; `optimistic` marks events a client
    applies before the ack, so every failure is answered with `action: "ROLLBACK"`.
    """

    def decorate(func: F) -> F:
        return _update(
            func,
            "ws_event",
            name=name,
            description=description,
            category=category,
            direction=direction,
            auth_required=auth_required,
            room_required=room_required,
            examples=tuple(examples),
            errors=tuple(errors),
            rate_limit=rate_limit,
            optimistic=optimistic,
        )

    return decorate


def ws_response(event: str, struct: type[Any]) -> Callable[[F], F]:
    """The Struct of the ack's `data` for `event` (the handler's own event name)."""

    def decorate(func: F) -> F:
        return _update(func, "ws_response", response=struct, response_event=event)

    return decorate


def server_event(
    name: str,
    payload: type[msgspec.Struct],
    *,
    description: str,
    category: str,
    room: str,
    examples: Sequence[Mapping[str, Any]] = (),
) -> ServerEvent:
    """Declare a server→client event; gateways list it in `emits` and emit through the hub."""
    spec = ServerEvent(name, payload, description, category, room, tuple(examples))
    check_server_event(spec)
    return spec


def _require(condition: bool, where: str, problem: str) -> None:
    if not condition:
        raise GatewayDefinitionError(f"{where}: {problem}")


def _check_examples(where: str, struct: type[Any] | None, examples: Sequence[Mapping[str, Any]]) -> None:
    for index, example in enumerate(examples):
        if struct is None:
            raise GatewayDefinitionError(f"{where}: example {index} given, but the event takes no payload")
        try:
            msgspec.convert(example, struct)
        except msgspec.ValidationError as exc:
            raise GatewayDefinitionError(
                f"{where}: example {index} does not fit {struct.__name__}: {exc}"
            ) from None


def check_event_spec(where: str, spec: EventSpec) -> None:
    _require("ws_event" in spec.decorated, where, "has @ws_response but no @ws_event")
    _require(
        bool(re.match(EVENT_NAME_PATTERN, spec.name)), where, f"event name {spec.name!r} is not `area:action`"
    )
    _require(bool(spec.description.strip()), where, "needs a description")
    _require(bool(spec.category.strip()), where, "needs a category")
    _require(spec.direction == "client_to_server", where, "a handler receives client→server events only")
    _require("ws_response" in spec.decorated, where, "needs @ws_response(event, Struct)")
    _require(
        spec.response_event == spec.name,
        where,
        f"@ws_response names {spec.response_event!r}, not {spec.name!r}",
    )
    _require(bool(spec.examples) or spec.payload is None, where, "needs at least one example payload")
    _check_examples(where, spec.payload, spec.examples)
    for code in spec.errors:
        _require(isinstance(code, ErrorCode), where, f"error {code!r} is not an ErrorCode")


def check_server_event(spec: ServerEvent) -> None:
    where = f"server event {spec.name!r}"
    _require(bool(re.match(EVENT_NAME_PATTERN, spec.name)), where, "name is not `area:action`")
    _require(bool(spec.description.strip()), where, "needs a description")
    _require(bool(spec.category.strip()), where, "needs a category")
    _require(bool(spec.room.strip()), where, "needs the room it goes to")
    _require(
        isinstance(spec.payload, type) and issubclass(spec.payload, msgspec.Struct),
        where,
        "payload must be a Struct",
    )
    _require(bool(spec.examples), where, "needs at least one example payload")
    _check_examples(where, spec.payload, spec.examples)
