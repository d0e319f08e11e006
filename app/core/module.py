"""NestJS-style modules: each declares what it contributes; `create_app` composes them.

A module never reaches into another; it contributes controllers (HTTP), gateways (socket event
handlers), HTTP dependencies, room authorization hooks, rooms a socket joins on connect, parts of
`session:ready` and of its `limits`, and start-up/shut-down work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
SocketHook = Callable[["AppContext", "Identity", str], Awaitable[None]]
"""Called with the socket's identity and sid when a socket connects or disconnects."""


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
