"""Client managers with room operations that reach every node.

python-socketio moves one socket between rooms across nodes, but not "every socket in room X";
these managers add that (Node's `socketsJoin`, `socketsLeave`, `disconnectSockets`), and the same
for every socket of a user or of a login session, found by identity. The in-process manager applies
an operation locally; the Redis manager applies it locally and publishes it, where every other node
concerned applies it to its sockets. The Redis manager publishes on per-room channels (`channels.py`).

Both deliver an emit without a callback through `FanOutManager`: the packet is encoded once and
handed to each recipient's Engine.IO socket, with no task per recipient and a bounded backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import socketio
from socketio import packet as sio_packet
from socketio.async_pubsub_manager import AsyncPubSubManager

from app.core.errors import AppError, ErrorCode
from app.core.metrics import Metrics
from app.core.socket.channels import CONFIRM_WITHIN, FanOutChannels, SubscriptionError
from app.core.socket.engine.outgoing import EncodedMessage
from app.core.socket.sockets import LocalSockets

logger = logging.getLogger(__name__)

ROOM_OP = "parley:room_op"
ROOM_OP_DONE = "parley:room_op_done"
ROOM_METHODS = frozenset({"emit", "close_room", ROOM_OP})
"""Messages that name rooms: published on the rooms' channels."""
TO_HOST = frozenset({"callback", ROOM_OP_DONE})
"""Messages for one node: published on its own channel."""
JOIN_CONFIRM_TIMEOUT = CONFIRM_WITHIN + 1.0
"""How long a join on other nodes waits for them to confirm it (each waits up to CONFIRM_WITHIN)."""
COPIES_REMEMBERED = 4096
"""Copies of emits to several rooms recognised as already handled (they arrive within moments)."""
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

    async def enter_rooms(self, sid: str, rooms: list[str]) -> None:
        """Put a socket of this node in several rooms at once (one round of subscriptions on Redis)."""
        manager: Any = self
        for room in rooms:
            manager.basic_enter_room(sid, NAMESPACE, room)
        await self.rooms_subscribed(rooms)

    async def rooms_subscribed(self, rooms: list[str]) -> None:
        """Return once this node receives what other nodes emit to `rooms` (at once in process);
        `AppError` UNAVAILABLE if it cannot be made sure of that."""

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


class IndexedRoomsManager(socketio.AsyncManager):  # type: ignore[misc]
    """python-socketio's rooms, with each socket's own rooms kept beside them.

    python-socketio finds a socket's rooms (`get_rooms`, and again to leave them at disconnect) by
    walking every room of the namespace, and each socket has a room of its own (its sid): with N
    sockets on a node every connect and disconnect cost O(N) (about 2 ms each at 10,000 sockets).
    Here they cost as much as the socket's own rooms. The state python-socketio keeps is the same
    (`rooms`, `callbacks`, the pending lists); its tests compare the two managers step by step.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rooms_by_sid: dict[tuple[str, str], dict[Any, None]] = {}
        """Per (namespace, sid), the rooms the socket is in (its connected marker, None, among them),
        in the order it entered them."""

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self.rooms_by_sid.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        own = self.rooms_by_sid.get((namespace, sid))
        if own is not None:
            own.pop(room, None)
            if not own:
                del self.rooms_by_sid[namespace, sid]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self.rooms_by_sid.get((namespace, sid), ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **_ignored: Any) -> None:
        """python-socketio's `basic_disconnect`, leaving the socket's rooms found in the index."""
        if namespace not in self.rooms:
            return
        for room in list(self.rooms_by_sid.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]


class FanOutManager(IndexedRoomsManager):
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
        room: str | list[str] | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | list[str] | None = None,
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

    def _enqueue(
        self, pkt: EncodedMessage, namespace: str, room: str | list[str] | None, skip_sid: Any
    ) -> None:
        skipped = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        sockets = self.server.eio.sockets
        frame = pkt.frame
        for sid, eio_sid in list(self.get_participants(namespace, room)):
            socket = sockets.get(eio_sid)
            if socket is not None and not socket.closed and sid not in skipped:
                socket.queue.deliver(pkt, frame)


class LocalManager(RoomOpsMixin, FanOutManager):
    """One node: everything stays in process."""

    async def close(self) -> None:
        """Nothing to release: no connection leaves the process."""


class RedisManager(RoomOpsMixin, AsyncPubSubManager, FanOutManager):  # type: ignore[misc]
    """Several nodes: python-socketio's pub/sub manager on per-room Redis channels, plus cross-node
    room operations.

    What a message concerns decides its channel (`channels_of`): an emit, `close_room` or room
    operation aimed at rooms goes on each room's channel, which only nodes with a member of the room
    hold (see `channels.py`); an ack travelling back goes on its node's own channel; the rest (an
    emit to every socket, a move or disconnect of one sid, operations chosen by identity, which every
    node must hear to replay them to sockets still being admitted) on the shared channel.

    An emit to several rooms is published once per room; a node that holds more than one of those
    rooms handles the first copy that arrives (delivering it to its members of any of the rooms) and
    ignores the others, so a socket in two of them receives it once.
    """

    def __init__(self, url: str, channel: str, metrics: Metrics) -> None:
        super().__init__(channel=channel)
        self.channels = FanOutChannels(url)
        self.received = metrics.fanout_received
        self._copies = itertools.count(1)
        self._copies_seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._join_ids = itertools.count(1)
        self._join_replies: dict[int, int] = {}
        self._join_replied = asyncio.Condition()
        self._confirming: set[asyncio.Task[None]] = set()

    def initialize(self) -> None:
        super().initialize()
        self.channels.want(self.channel)
        self.channels.want(self.host_channel(self.host_id))

    def host_channel(self, host_id: str) -> str:
        return f"{self.channel}@{host_id}"

    def room_channel(self, room: str) -> str:
        return f"{self.channel}#{room}"

    def channels_of(self, message: dict[str, Any]) -> list[str]:
        if message.get("method") in TO_HOST:
            return [self.host_channel(message["host_id"])]
        room = message.get("room")
        rooms: list[Any] = room if isinstance(room, list) else [room]
        if message.get("method") in ROOM_METHODS and rooms and all(map(has_own_channel, rooms)):
            return [self.room_channel(str(name)) for name in rooms]
        return [self.channel]

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        first = room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if first and has_own_channel(room):
            self.channels.want(self.room_channel(room))

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        if has_own_channel(room) and room not in self.rooms.get(namespace, {}):
            self.channels.drop(self.room_channel(room))

    async def enter_room(self, sid: str, namespace: str, room: str, eio_sid: Any = None) -> None:
        """Join, and return once Redis confirmed the node's subscription to the room's channel: an
        emit to the room published by any node after this returns reaches the socket. A socket of
        another node joins there, and this returns once that node confirmed it likewise."""
        if not (self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace)):
            await self.room_operation({"op": "join", "room": sid, "targets": [room]})
            return
        was_in = room in self.get_rooms(sid, namespace)
        self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        try:
            await self.rooms_subscribed([room])
        except AppError:
            if not was_in:  # a socket already in the room stays, whatever its second join answers
                self.basic_leave_room(sid, namespace, room)
            raise

    async def rooms_subscribed(self, rooms: list[str]) -> None:
        channels = [self.room_channel(room) for room in rooms if has_own_channel(room)]
        try:
            await self.channels.subscribed(channels)
        except SubscriptionError as exc:
            logger.warning("rooms %s not subscribed: %s", ", ".join(rooms), exc)
            raise AppError(
                ErrorCode.UNAVAILABLE, "The room could not be subscribed to in time; try again"
            ) from None

    async def _publish(self, data: dict[str, Any]) -> int:
        """Publish on the channels `data` concerns; the number of nodes (this one included) that
        received it, 0 when Redis could not be reached."""
        channels = self.channels_of(data)
        if len(channels) > 1:
            data = {**data, "copy": next(self._copies)}
        encoded = self.json.dumps(data)
        received = 0
        for channel in channels:
            try:
                received += await self.channels.publish(channel, encoded)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any Redis failure means "not delivered to other nodes"
                self.channels.outages.failed("publish", exc)
        return received

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        copy = message.get("copy")
        if copy is not None and not self._first_copy(message.get("host_id", ""), copy):
            return
        await super()._handle_emit(message)

    def _first_copy(self, host_id: str, copy: int) -> bool:
        key = (host_id, copy)
        if key in self._copies_seen:
            return False
        self._copies_seen[key] = None
        if len(self._copies_seen) > COPIES_REMEMBERED:
            self._copies_seen.popitem(last=False)
        return True

    async def room_operation(self, op: dict[str, Any]) -> None:
        await self._apply_room_op(op)
        message = {"method": ROOM_OP, "host_id": self.host_id, **op}
        if op["op"] != "join" or "room" not in op:
            await self._publish(message)
            return
        await self._join_everywhere(message)

    async def _join_everywhere(self, message: dict[str, Any]) -> None:
        """Publish a join by room and wait until each node holding the room has applied it and holds
        the targets' channels, so that an emit to a target right after reaches every socket moved
        (the targets' channels may not have been held by those nodes before)."""
        reply = next(self._join_ids)
        self._join_replies[reply] = 0
        try:
            received = await self._publish({**message, "reply": reply})
            own_copy = any(map(self.channels.holds, self.channels_of(message)))
            expected = received - 1 if own_copy else received
            async with self._join_replied:
                await asyncio.wait_for(
                    self._join_replied.wait_for(lambda: self._join_replies[reply] >= expected),
                    JOIN_CONFIRM_TIMEOUT,
                )
        except TimeoutError:
            logger.warning(
                "join of %s to %s: %d of %d nodes confirmed within %g s",
                message["room"],
                ", ".join(message["targets"]),
                self._join_replies[reply],
                expected,
                JOIN_CONFIRM_TIMEOUT,
            )
        finally:
            del self._join_replies[reply]

    async def _confirm_join(self, op: dict[str, Any]) -> None:
        """Tell the node that published a join by room that this node applied it and holds the
        channels of the targets its sockets entered."""
        rooms = self.rooms.get(NAMESPACE, {})
        targets = [self.room_channel(t) for t in op["targets"] if has_own_channel(t) and t in rooms]
        try:
            await self.channels.subscribed(targets)
        except SubscriptionError as exc:
            logger.warning("join of %s to %s: %s", op["room"], ", ".join(op["targets"]), exc)
        await self._publish({"method": ROOM_OP_DONE, "host_id": op["host_id"], "reply": op["reply"]})

    async def _join_confirmed(self, reply: int) -> None:
        if reply in self._join_replies:
            self._join_replies[reply] += 1
            async with self._join_replied:
                self._join_replied.notify_all()

    async def _listen(self) -> AsyncIterator[Any]:
        """Hand python-socketio the messages of this node's channels; apply room operations from
        other nodes on the way."""
        while True:
            message = await self.channels.inbox.get()
            self.received.inc()
            data = self._decode_room_op(message)
            if data is None:
                yield message
            elif data["method"] == ROOM_OP_DONE:
                await self._join_confirmed(data["reply"])
            elif data.get("host_id") != self.host_id:
                await self._apply_remote_op(data)

    async def _apply_remote_op(self, op: dict[str, Any]) -> None:
        try:
            await self._apply_room_op(op)
        except asyncio.CancelledError:
            raise
        except Exception:
            where = op.get("room", "sockets chosen by identity")
            logger.exception("room operation %s on %s failed", op.get("op"), where)
        if op.get("reply") is not None:
            task = asyncio.create_task(self._confirm_join(op), name="parley-confirm-join")
            self._confirming.add(task)
            task.add_done_callback(self._confirming.discard)

    def _decode_room_op(self, message: Any) -> dict[str, Any] | None:
        """A room operation or a join's confirmation (both hold the ROOM_OP marker); None otherwise."""
        marker: bytes | str = ROOM_OP.encode() if isinstance(message, bytes) else ROOM_OP
        if not isinstance(message, bytes | str) or marker not in message:  # type: ignore[operator]
            return None
        try:
            data = self.json.loads(message)
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("method") in (ROOM_OP, ROOM_OP_DONE) else None

    async def close(self) -> None:
        """Stop listening and close this node's Redis connections."""
        thread = getattr(self, "thread", None)
        if isinstance(thread, asyncio.Task):
            thread.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await thread
        await self.channels.close()


def has_own_channel(room: Any) -> bool:
    """Rooms named `prefix:id` have a channel each; sid rooms (no colon) and None do not."""
    return isinstance(room, str) and ":" in room
