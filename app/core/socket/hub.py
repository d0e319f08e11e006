"""The socket layer as other modules see it: emit declared events, move sockets between rooms.

Every operation reaches every node when Redis is configured: emits through python-socketio's
manager, room operations through the managers in `managers.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from app.core.metrics import Metrics
from app.core.socket.decorators import ServerEvent
from app.core.socket.protocol import FORCE_LOGOUT, ForceLogout, ForceLogoutReason
from app.core.socket.sockets import LocalSockets

if TYPE_CHECKING:
    from app.core.socket.engine.server import ParleyServer

NAMESPACE = "/"


class SocketHub:
    def __init__(self, server: ParleyServer, metrics: Metrics, max_rooms: int) -> None:
        self.server = server
        self.metrics = metrics
        self.max_rooms = max_rooms
        self.local: LocalSockets = server.manager.local_sockets

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

    def members(self, room: str) -> list[str]:
        """The sids of this node's sockets in `room`."""
        return [sid for sid, _ in self.manager.get_participants(NAMESPACE, room)]

    async def sockets_join(self, room: str, target: str) -> None:
        """Every socket in `room`, on any node, joins `target`; a socket already in SOCKET_MAX_ROOMS
        rooms does not (its client can leave one and `room:join` the target)."""
        op = {"op": "join", "room": room, "targets": [target], "max_rooms": self.max_rooms}
        await self.manager.room_operation(op)

    async def sockets_leave(self, room: str, target: str) -> None:
        """Every socket in `room`, on any node, leaves `target`."""
        await self.manager.room_operation({"op": "leave", "room": room, "targets": [target]})

    async def users_leave(self, user_ids: Sequence[str], rooms: Sequence[str]) -> None:
        """Every socket of these users, on any node, leaves `rooms`, whatever rooms it holds."""
        if user_ids and rooms:
            op = {"op": "leave", "users": list(user_ids), "targets": list(rooms)}
            await self.manager.room_operation(op)

    async def catch_up(self, sid: str, since: float) -> bool:
        """Apply to a socket of this node the moves by identity made since `since` (`time.monotonic()`)
        that it missed while it was being admitted or checked; True if one of them disconnects it."""
        caught: bool = await self.manager.catch_up(sid, since)
        return caught

    async def disconnect_sockets(self, room: str, *, event: str | None = None, data: Any = None) -> None:
        """Disconnect every socket in `room` on any node, emitting `event` to each first."""
        payload = msgspec.to_builtins(data) if data is not None else None
        await self.manager.room_operation({"op": "disconnect", "room": room, "event": event, "data": payload})

    async def force_logout(
        self,
        reason: ForceLogoutReason,
        message: str,
        *,
        users: Sequence[str] = (),
        sessions: Sequence[str] = (),
    ) -> None:
        """`force_logout`, then disconnect, for every socket of these users and login sessions on any
        node, found by identity (not through a room the client could leave)."""
        if not users and not sessions:
            return
        await self.manager.room_operation(
            {
                "op": "disconnect",
                "users": list(users),
                "sessions": list(sessions),
                "event": FORCE_LOGOUT.name,
                "data": msgspec.to_builtins(ForceLogout(reason, message)),
            }
        )
