"""NestJS-style modules: each declares what it contributes; `create_app` composes them.

A module never reaches into another; it contributes controllers (HTTP), gateways (socket event
handlers), HTTP dependencies, providers, room authorization hooks, rooms a socket joins on connect,
parts of `session:ready` and of its `limits`, start-up/shut-down work, and its own migrations. It
states which providers it needs from other modules (`requires`); start-up puts it after them
(`app.core.module_order`). Modules from outside Parley are named by `PARLEY_MODULES`
(`app.core.module_loader`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar.di import Provide
from litestar.types import ControllerRouterHandler

if TYPE_CHECKING:
    from app.core.context import AppContext
    from app.core.security.identity import Identity
    from app.core.socket.ready import LimitPart, ReadyPart
    from app.core.socket.rooms import RoomHook

LifecycleHook = Callable[["AppContext"], Awaitable[None]]
RoomHookFactory = Callable[["AppContext"], "RoomHook"]
ConnectRooms = Callable[["AppContext", "Identity"], Awaitable[Sequence[str]]]
"""The rooms a connecting socket joins besides its identity rooms; it only reads (its units of work
share one read-only session)."""
SocketHook = Callable[["AppContext", "Identity", str], Awaitable[None]]
"""Called with the socket's identity and sid when a socket connects or disconnects."""


class ModuleError(RuntimeError):
    """A module that cannot be loaded or placed; the message is one line meant for the operator."""


@dataclass(frozen=True, slots=True)
class Module:
    name: str
    controllers: Sequence[ControllerRouterHandler] = ()
    gateways: Sequence[type[Any]] = ()
    dependencies: Mapping[str, Provide] = field(default_factory=dict)
    providers: Mapping[type[Any], Callable[[AppContext], Any]] = field(default_factory=dict)
    room_hooks: Mapping[str, RoomHookFactory] = field(default_factory=dict)
    connect_rooms: Sequence[ConnectRooms] = ()
    session_ready: Mapping[str, ReadyPart] = field(default_factory=dict)
    limits: Mapping[str, LimitPart] = field(default_factory=dict)
    on_connect: Sequence[SocketHook] = ()
    on_disconnect: Sequence[SocketHook] = ()
    on_startup: Sequence[LifecycleHook] = ()
    on_shutdown: Sequence[LifecycleHook] = ()
    requires: Sequence[type[Any]] = ()
    """Types this module takes from other modules' providers; start-up places it after them."""
    migrations: Path | None = None
    """The folder of this module's Alembic revisions: a branch of its own, labelled with its name,
    applied by `parley db upgrade` beside Parley's."""

    @property
    def provides(self) -> tuple[type[Any], ...]:
        """The types this module's providers build, which other modules may require."""
        return tuple(self.providers)
