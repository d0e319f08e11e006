"""The socket layer as other modules see it: emit declared events, move sockets between rooms.

Every operation reaches every node when Redis is configured: emits through python-socketio's
manager, room operations through the managers in `managers.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from app.core.metrics import Metrics
from app.core.security.identity import Identity
from app.core.socket.decorators import ServerEvent
from app.core.socket.protocol import ForceLogout, ForceLogoutReason

if TYPE_CHECKING:
    from app.core.socket.server import ParleyServer

NAMESPACE = "/"


@dataclass(slots=True)
class LocalSocket:
    """Per-socket state of this node (never stored on the namespace or server object)."""

    sid: str
    identity: Identity
    slots: asyncio.Semaphore
    """Bounds the handlers running at once for this socket (SOCKET_MAX_CONCURRENT_HANDLERS)."""
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    waiting: int = 0
    expiry: asyncio.TimerHandle | None = None


class SocketHub:
    def __init__(self, server: ParleyServer, metrics: Metrics, max_rooms: int) -> None:
        self.server = server
        self.metrics = metrics
        self.max_rooms = max_rooms
        self.local: dict[str, LocalSocket] = {}

    @property
    def manager(self) -> Any:
        return self.server.manager

    async def emit(
        self,
        event: ServerEvent,
        payload: msgspec.Struct,
        *,
        room: str | list[str],
        skip_sid: str | list[str] | None = None,
    ) -> None:
        """Emit a declared event to a room (or a sid), or once to each socket in any of several rooms,
        on every node."""
        if not isinstance(payload, event.payload):
            raise TypeError(f"{event.name} carries {event.payload.__name__}, not {type(payload).__name__}")
        self.metrics.events_out.labels(event.name).inc()
        await self.server.emit(event.name, payload, to=room, skip_sid=skip_sid)

    async def emit_to_socket(self, sid: str, name: str, payload: Any) -> None:
        """Emit a protocol-level event to one socket of this node, without a round trip through Redis.

        Answers to a socket's own traffic keep flowing while Redis is unreachable.
        """
        self.metrics.events_out.labels(name).inc()
        await self.server.emit(name, payload, to=sid, ignore_queue=True)

    async def join(self, sid: str, room: str) -> None:
        await self.server.enter_room(sid, room)

    async def leave(self, sid: str, room: str) -> None:
        await self.server.leave_room(sid, room)

    def rooms_of(self, sid: str) -> list[str]:
        return [room for room in self.server.rooms(sid) if room != sid]

    async def sockets_join(self, room: str, target: str) -> None:
        """Every socket in `room`, on any node, joins `target`; a socket already in SOCKET_MAX_ROOMS
        rooms does not (its client can leave one and `room:join` the target)."""
        op = {"op": "join", "room": room, "target": target, "max_rooms": self.max_rooms}
        await self.manager.room_operation(op)

    async def sockets_leave(self, room: str, target: str) -> None:
        """Every socket in `room`, on any node, leaves `target`."""
        await self.manager.room_operation({"op": "leave", "room": room, "target": target})

    async def disconnect_sockets(self, room: str, *, event: str | None = None, data: Any = None) -> None:
        """Disconnect every socket in `room` on any node, emitting `event` to each first."""
        payload = msgspec.to_builtins(data) if data is not None else None
        await self.manager.room_operation({"op": "disconnect", "room": room, "event": event, "data": payload})

    async def force_logout(self, room: str, reason: ForceLogoutReason, message: str) -> None:
        await self.disconnect_sockets(room, event="force_logout", data=ForceLogout(reason, message))
