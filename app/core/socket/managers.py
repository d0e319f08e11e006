"""Client managers with room operations that reach every node.

python-socketio moves one socket between rooms across nodes, but not "every socket in room X";
these managers add that (Node's `socketsJoin`, `socketsLeave`, `disconnectSockets`). The in-process
manager applies an operation locally; the Redis manager applies it locally and publishes it on
python-socketio's own channel, where every other node applies it to its sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import socketio

logger = logging.getLogger(__name__)

ROOM_OP = "parley:room_op"
NAMESPACE = "/"


class RoomOpsMixin:
    """Local application of a room operation; shared by both managers."""

    async def _apply_room_op(self, op: dict[str, Any]) -> None:
        manager: Any = self  # a socketio.AsyncManager, by the classes below
        members = [sid for sid, _ in manager.get_participants(NAMESPACE, op["room"])]
        kind = op["op"]
        for sid in members:
            if kind == "join":
                manager.basic_enter_room(sid, NAMESPACE, op["target"])
            elif kind == "leave":
                manager.basic_leave_room(sid, NAMESPACE, op["target"])
            elif kind == "disconnect":
                if op.get("event"):
                    await manager.server.emit(op["event"], op.get("data"), to=sid, ignore_queue=True)
                await manager.server.disconnect(sid, ignore_queue=True)

    async def room_operation(self, op: dict[str, Any]) -> None:
        await self._apply_room_op(op)


class LocalManager(RoomOpsMixin, socketio.AsyncManager):  # type: ignore[misc]
    """One node: everything stays in process."""


class RedisManager(RoomOpsMixin, socketio.AsyncRedisManager):  # type: ignore[misc]
    """Several nodes: python-socketio's Redis manager plus cross-node room operations."""

    async def room_operation(self, op: dict[str, Any]) -> None:
        await self._apply_room_op(op)
        await self._publish({"method": ROOM_OP, "host_id": self.host_id, **op})

    async def _listen(self) -> AsyncIterator[Any]:
        """Hand python-socketio its messages; apply room operations from other nodes on the way."""
        async for message in super()._listen():
            op = self._decode_room_op(message)
            if op is None:
                yield message
            elif op.get("host_id") != self.host_id:
                try:
                    await self._apply_room_op(op)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("room operation %s on %s failed", op.get("op"), op.get("room"))

    def _decode_room_op(self, message: Any) -> dict[str, Any] | None:
        marker: bytes | str = ROOM_OP.encode() if isinstance(message, bytes) else ROOM_OP
        if not isinstance(message, bytes | str) or marker not in message:  # type: ignore[operator]
            return None
        try:
            data = self.json.loads(message)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("method") == ROOM_OP else None
