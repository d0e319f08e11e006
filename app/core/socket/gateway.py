"""Gateways: classes whose decorated methods handle socket events (NestJS `@WebSocketGateway`)."""

from __future__ import annotations

import dis
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, get_type_hints

import msgspec

from app.core.socket.decorators import (
    SPEC_ATTRIBUTE,
    EventSpec,
    GatewayDefinitionError,
    ServerEvent,
    check_event_spec,
)

if TYPE_CHECKING:
    from app.core.context import AppContext


class Gateway:
    """Subclass, decorate methods with `@ws_event` and `@ws_response`; list emitted events.

    A handler's payload type is the annotation of its `payload` parameter, stated once; a handler
    without that parameter handles an event that takes no payload.
    Every public coroutine method must be a decorated handler: an undocumented handler is a
    definition error, raised when the class is created.
    """

    emits: ClassVar[tuple[ServerEvent, ...]] = ()
    handlers: ClassVar[dict[str, EventSpec]] = {}

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, EventSpec] = {}
        for attribute, value in vars(cls).items():
            spec: EventSpec | None = getattr(value, SPEC_ATTRIBUTE, None)
            where = f"{cls.__qualname__}.{attribute}"
            if spec is None:
                if inspect.iscoroutinefunction(value) and not attribute.startswith("_"):
                    raise GatewayDefinitionError(f"{where}: public coroutine without @ws_event")
                continue
            if not inspect.iscoroutinefunction(value):
                raise GatewayDefinitionError(f"{where}: a handler must be `async def`")
            spec = replace(spec, payload=payload_type(where, value))
            check_event_spec(where, spec)
            handlers[attribute] = spec
        for event in cls.emits:
            if not isinstance(event, ServerEvent):
                raise GatewayDefinitionError(f"{cls.__qualname__}.emits: {event!r} is not a ServerEvent")
        cls.handlers = handlers


def payload_type(where: str, handler: Callable[..., Any]) -> type[msgspec.Struct] | None:
    """The Struct annotated on the handler's `payload` parameter; None without one (the event takes
    no payload). A Struct under another name is refused rather than read as a missing payload."""
    try:
        hints = get_type_hints(handler)
    except NameError as exc:
        raise GatewayDefinitionError(f"{where}: cannot resolve a parameter type ({exc})") from None
    if "payload" not in inspect.signature(handler).parameters:
        for name, hint in hints.items():
            if name != "return" and isinstance(hint, type) and issubclass(hint, msgspec.Struct):
                raise GatewayDefinitionError(
                    f"{where}: the Struct parameter {name!r} must be named `payload`"
                )
        return None
    annotation = hints.get("payload")
    if not (isinstance(annotation, type) and issubclass(annotation, msgspec.Struct)):
        raise GatewayDefinitionError(f"{where}: `payload` must be annotated with a Struct, not {annotation}")
    return annotation


Handler = Callable[..., Awaitable[Any]]


_SUSPENDING = frozenset(
    {"GET_AWAITABLE", "GET_AITER", "GET_ANEXT", "BEFORE_ASYNC_WITH", "SEND", "YIELD_VALUE"}
)
"""Instructions of `await`, `async for` and `async with`: where a coroutine can wait."""


def may_wait(handler: Callable[..., Any]) -> bool:
    """Whether a coroutine function's body has an `await`, `async for` or `async with`; one without
    any runs to its end as soon as it is called (what it calls is plain functions)."""
    return any(instruction.opname in _SUSPENDING for instruction in dis.get_instructions(handler))


@dataclass(frozen=True, slots=True)
class BoundHandler:
    """A handler ready to call: its spec and how to fill each parameter."""

    spec: EventSpec
    call: Handler
    parameters: tuple[tuple[str, type[Any]], ...]
    gateway: str
    waits: bool = True
    """Whether the handler may wait (`may_wait`); one that never does is run without a task."""


def bind_handlers(gateway: Gateway) -> list[BoundHandler]:
    """Resolve each handler's parameter types once, when the app is built."""
    bound: list[BoundHandler] = []
    for attribute, spec in type(gateway).handlers.items():
        method = getattr(gateway, attribute)
        try:
            hints = get_type_hints(method)
        except NameError as exc:
            raise GatewayDefinitionError(
                f"{type(gateway).__qualname__}.{attribute}: cannot resolve a parameter type ({exc})"
            ) from None
        parameters = tuple(
            (name, hints[name]) for name in inspect.signature(method).parameters if name in hints
        )
        missing = [name for name in inspect.signature(method).parameters if name not in hints]
        if missing:
            raise GatewayDefinitionError(
                f"{type(gateway).__qualname__}.{attribute}: parameters {missing} need type annotations"
            )
        bound.append(BoundHandler(spec, method, parameters, type(gateway).__qualname__, may_wait(method)))
    return bound
