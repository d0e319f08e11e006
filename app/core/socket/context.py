"""Who a socket is, and what a handler may do with it."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.core.errors import AppError, ErrorCode
from app.core.security.identity import Identity

if TYPE_CHECKING:
    from app.core.context import AppContext
    from app.core.socket.decorators import ServerEvent
    from app.core.socket.hub import SocketHub


@dataclass(frozen=True, slots=True)
class SocketContext:
    """Handed to every handler: the socket, its identity and helpers bound to it."""

    sid: str
    identity: Identity
    ctx: AppContext
    hub: SocketHub
    opened: float = field(default_factory=time.monotonic)
    """When the handler started (`time.monotonic()`): what it checked before a join may have changed since."""

    @property
    def user_id(self) -> uuid.UUID:
        return self.identity.user_id

    @property
    def session_id(self) -> str | None:
        return self.identity.session_id

    async def emit(
        self, event: ServerEvent, payload: Any, *, room: str | None = None, skip_self: bool = False
    ) -> None:
        """Emit a declared server event to a room (default: this socket)."""
        await self.hub.emit(event, payload, room=room or self.sid, skip_sid=self.sid if skip_self else None)

    async def join(self, *rooms: str) -> None:
        """Join `rooms`, all or none: a socket may be in at most SOCKET_MAX_ROOMS rooms.

        Rooms the socket is already in do not count again. The bound applies to what a client asks
        for; rooms the server puts a socket in (on connect, on joining a conversation) are not refused.
        A removal that ran while the handler was checking the join is applied after it.
        """
        limit = self.ctx.settings.socket.max_rooms
        if len(set(self.rooms()).union(rooms)) > limit:
            raise AppError(
                ErrorCode.RATE_LIMITED, f"A socket may be in at most {limit} rooms", {"limit": limit}
            )
        for room in rooms:
            await self.hub.join(self.sid, room)
        await self.hub.catch_up(self.sid, self.opened)

    async def leave(self, room: str) -> None:
        await self.hub.leave(self.sid, room)

    def rooms(self) -> list[str]:
        return self.hub.rooms_of(self.sid)
