"""Client managers with room operations that reach every node.

python-socketio moves one socket between rooms across nodes, but not "every socket in room X";
these managers add that (Node's `socketsJoin`, `socketsLeave`, `disconnectSockets`), and the same
for every socket of a user or of a login session, found by identity. The in-process manager applies
an operation locally; the Redis manager applies it locally and publishes it on python-socketio's own
channel, where every other node applies it to its sockets.

Both deliver an emit without a callback through `FanOutManager`: the packet is encoded once and
handed to each recipient's Engine.IO socket, with no task per recipient and a bounded backlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import socketio
from socketio import packet as sio_packet

from app.core.socket.engine.outgoing import EncodedMessage
from app.core.socket.sockets import LocalSockets

logger = logging.getLogger(__name__)

ROOM_OP = "parley:room_op"
LISTEN_RETRY_MIN = 0.2
LISTEN_RETRY_MAX = 2.0
NAMESPACE = "/"


class RoomOpsMixin:
    """Local application of a room operation; shared by both managers.

    An operation picks its sockets by `room` (the sockets in it) or by identity, `users` and/or
    `sessions` (found in `local_sockets` whatever rooms they are in). `join` and `leave` move them into
    or out of `targets`; `disconnect` emits `event` to each first.
    """

    local_sockets: LocalSockets

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.local_sockets = LocalSockets()

    async def _apply_room_op(self, op: dict[str, Any]) -> None:
        if "room" in op:
            manager: Any = self  # a socketio.AsyncManager, by the classes below
            members = [sid for sid, _ in manager.get_participants(NAMESPACE, op["room"])]
        else:
            members = self.local_sockets.selected_by(op)
            self.local_sockets.remember(op)
        await self._apply_to(op, members)

    async def _apply_to(self, op: dict[str, Any], members: list[str]) -> None:
        manager: Any = self
        kind = op["op"]
        for sid in members:
            if kind == "join":
                for target in op["targets"]:
                    if not self._room_limit_reached(sid, op, target):
                        manager.basic_enter_room(sid, NAMESPACE, target)
            elif kind == "leave":
                for target in op["targets"]:
                    manager.basic_leave_room(sid, NAMESPACE, target)
            elif kind == "disconnect":
                if op.get("event"):
                    await manager.server.emit(op["event"], op.get("data"), to=sid, ignore_queue=True)
                await manager.server.disconnect(sid, ignore_queue=True)

    async def room_operation(self, op: dict[str, Any]) -> None:
        await self._apply_room_op(op)

    def _room_limit_reached(self, sid: str, op: dict[str, Any], target: str) -> bool:
        """A join that would take a socket past `max_rooms` (its own sid room not counted) is skipped."""
        manager: Any = self
        limit = op.get("max_rooms")
        rooms = [room for room in manager.get_rooms(sid, NAMESPACE) if room != sid]
        if limit is None or target in rooms or len(rooms) < limit:
            return False
        logger.info("socket %s is in %d rooms; not joining %s", sid, len(rooms), target, extra={"sid": sid})
        return True

    async def catch_up(self, sid: str, since: float) -> bool:
        """Apply to `sid` the moves by identity it missed since `since`; True if one of the operations
        it missed disconnects it, which is left to the caller (a handshake refuses instead)."""
        missed = self.local_sockets.recent_for(sid, since)
        if any(op["op"] == "disconnect" for op in missed):
            return True
        for op in missed:
            await self._apply_to(op, [sid])
        return False


class FanOutManager(socketio.AsyncManager):  # type: ignore[misc]
    """Local delivery of an emit without a callback: encoded once, queued on each recipient's socket.

    python-socketio creates one task per recipient for this; here each packet goes straight into
    the Engine.IO socket's outgoing queue, which on a websocket writes it at once (see
    `outgoing.py`), so per-socket order is the order of the emits. The queue bounds what may wait
    and cuts off a consumer that falls further behind. Emits with a callback take python-socketio's
    own path.
    """

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None or namespace not in self.rooms:
            await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
            return
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        if not isinstance(encoded, str):  # binary attachments: Engine.IO encodes them per transport
            await super().emit(event, data, namespace, room, skip_sid, callback, to, **kwargs)
            return
        self._enqueue(EncodedMessage(encoded), namespace, to or room, skip_sid)

    def _enqueue(self, pkt: EncodedMessage, namespace: str, room: str | None, skip_sid: Any) -> None:
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        sockets = self.server.eio.sockets
        for sid, eio_sid in list(self.get_participants(namespace, room)):
            socket = sockets.get(eio_sid)
            if sid not in skipped and socket is not None and not socket.closed:
                socket.queue.put_nowait(pkt)


class LocalManager(RoomOpsMixin, FanOutManager):
    """One node: everything stays in process."""


class RedisManager(RoomOpsMixin, socketio.AsyncRedisManager, FanOutManager):  # type: ignore[misc]
    """Several nodes: python-socketio's Redis manager plus cross-node room operations.

    It also changes how a Redis outage is lived through: python-socketio backs its listener off up
    to 60 s and logs every failed publish; here the listener retries at least every
    `LISTEN_RETRY_MAX` seconds, so fan-out resumes by itself soon after Redis returns, and each
    outage is logged once when it starts and once when it ends.
    """

    connected: bool

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self.outage = False

    def _outage_started(self, where: str, exc: Exception) -> None:
        if not self.outage:
            self.outage = True
            logger.warning("Redis fan-out unavailable (%s: %s); local sockets keep working", where, exc)

    def _outage_ended(self) -> None:
        if self.outage:
            self.outage = False
            logger.warning("Redis fan-out resumed")

    async def _publish(self, data: Any) -> Any:
        """Publish, reconnecting once (a connection may be stale after Redis restarted)."""
        for attempt in range(2):
            try:
                if not self.connected:
                    self._redis_connect()
                result = await self.redis.publish(self.channel, self.json.dumps(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any Redis failure means "not delivered to other nodes"
                self.connected = False
                if attempt == 1:
                    self._outage_started("publish", exc)
            else:
                return result
        return None

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        retry = LISTEN_RETRY_MIN
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                self._outage_ended()
                retry = LISTEN_RETRY_MIN
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried below, logged once per outage
                self._outage_started("subscribe", exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, LISTEN_RETRY_MAX)

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
                    where = op.get("room", "sockets chosen by identity")
                    logger.exception("room operation %s on %s failed", op.get("op"), where)

    def _decode_room_op(self, message: Any) -> dict[str, Any] | None:
        marker: bytes | str = ROOM_OP.encode() if isinstance(message, bytes) else ROOM_OP
        if not isinstance(message, bytes | str) or marker not in message:  # type: ignore[operator]
            return None
        try:
            data = self.json.loads(message)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("method") == ROOM_OP else None
