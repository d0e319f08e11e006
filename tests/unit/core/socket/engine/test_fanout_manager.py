"""The fan-out layer of the client managers: one encoding, straight into each socket's outgoing
queue, in emit order; a consumer whose queue passes its bound is cut off, and the others get
everything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio

from app.core.socket.engine.managers import LocalManager
from app.core.socket.engine.outgoing import BacklogLimit, OutgoingQueue

ROOM = "bench:r"
ROOMY = BacklogLimit(max_bytes=1 << 20, max_packets=100)
TIGHT = BacklogLimit(max_bytes=1 << 20, max_packets=4)


@dataclass
class FakeEioSocket:
    """What the managers touch of an Engine.IO socket: the outgoing queue (the fan-out layer), whether
    it is closed, and `send` (python-socketio's own path)."""

    limit: BacklogLimit
    queue: OutgoingQueue = field(init=False)
    closed: bool = False
    sent: list[str] = field(default_factory=list)
    cut_off: int = 0

    def __post_init__(self) -> None:
        self.queue = OutgoingQueue(self.limit)
        self.queue.on_overflow = self._cut_off

    def _cut_off(self) -> None:
        self.cut_off += 1

    async def send(self, pkt: Any) -> None:
        self.sent.append(pkt.encode())

    def written(self) -> list[str]:
        return [self.queue.get_nowait().encode() for _ in range(self.queue.qsize())]


class Room:
    def __init__(self) -> None:
        self.manager = LocalManager()
        self.server = socketio.AsyncServer(client_manager=self.manager, async_mode="asgi")
        self.sockets: dict[str, FakeEioSocket] = {}

    async def join(self, count: int, limit: BacklogLimit = ROOMY) -> list[str]:
        sids = []
        for index in range(len(self.sockets), len(self.sockets) + count):
            eio_sid = f"eio-{index}"
            self.sockets[eio_sid] = self.server.eio.sockets[eio_sid] = FakeEioSocket(limit)
            sid = await self.manager.connect(eio_sid, "/")
            await self.manager.enter_room(sid, "/", ROOM)
            sids.append(sid)
        return sids

    def socket_of(self, sid: str) -> FakeEioSocket:
        return self.sockets[self.manager.eio_sid_from_sid(sid, "/")]


@pytest.fixture
async def room() -> Room:
    return Room()


async def test_each_member_gets_every_emit_once_in_order(room: Room) -> None:
    members = await room.join(3)

    for seq in range(50):
        await room.server.emit("bench:msg", {"s": seq}, to=ROOM)

    expected = [f'42["bench:msg",{{"s":{seq}}}]' for seq in range(50)]
    assert [room.socket_of(sid).written() for sid in members] == [expected] * 3


async def test_skipped_closed_and_foreign_sockets_get_nothing(room: Room) -> None:
    sender, closed, member = await room.join(3)
    room.socket_of(closed).closed = True
    (outsider,) = await room.join(1)
    await room.manager.leave_room(outsider, "/", ROOM)

    await room.server.emit("bench:msg", {"s": 1}, to=ROOM, skip_sid=sender)

    assert room.socket_of(member).written() == ['42["bench:msg",{"s":1}]']
    assert room.socket_of(sender).written() == []
    assert room.socket_of(closed).written() == []
    assert room.socket_of(outsider).written() == []


async def test_a_slow_consumer_is_cut_off_once_and_the_others_keep_receiving(room: Room) -> None:
    (slow,) = await room.join(1, TIGHT)
    (fast,) = await room.join(1)
    received = []

    for seq in range(6):
        await room.server.emit("bench:msg", {"s": seq}, to=ROOM)
        received += room.socket_of(fast).written()

    assert room.socket_of(slow).cut_off == 1  # 0-3 waited, 4 passed the bound
    assert room.socket_of(slow).written() == [], "what waited was dropped, and nothing more is taken"
    assert room.socket_of(fast).cut_off == 0
    assert received == [f'42["bench:msg",{{"s":{seq}}}]' for seq in range(6)]


async def test_an_emit_with_a_callback_takes_python_socketio_s_path(room: Room) -> None:
    (member,) = await room.join(1)

    await room.server.emit("bench:msg", {"s": 1}, to=member, callback=lambda *_: None)

    assert room.socket_of(member).sent == ['421["bench:msg",{"s":1}]']
    assert room.socket_of(member).written() == []


async def test_binary_attachments_take_python_socketio_s_path(room: Room) -> None:
    (member,) = await room.join(1)

    await room.server.emit("bench:msg", b"\x01\x02", to=ROOM)

    assert room.socket_of(member).sent == ['451-["bench:msg",{"_placeholder":true,"num":0}]', b"\x01\x02"]
    assert room.socket_of(member).written() == []
