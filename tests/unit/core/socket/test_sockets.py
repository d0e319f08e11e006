"""The node's socket index and the room operations that pick sockets by identity.

A real python-socketio server and manager hold the rooms; the Engine.IO layer is left out, since
only room membership and the index are under test (a disconnect is recorded instead of sent).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import socketio

from app.core.security.identity import Identity
from app.core.socket.engine.managers import LocalManager
from app.core.socket.sockets import LocalSocket

NAMESPACE = "/"
U1, U2, U9 = (f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 9))
"""User ids as operations carry them, as text."""


class Node:
    def __init__(self) -> None:
        self.manager = LocalManager()
        self.server = socketio.AsyncServer(client_manager=self.manager, async_mode="asgi")
        self.server.disconnect = self._record_disconnect
        self.server.emit = self._record_emit
        self.disconnected: list[str] = []
        self.emitted: list[tuple[str, Any, str]] = []
        self.count = 0

    async def connect(self, user_id: str, session_id: str | None, *rooms: str, register: bool = True) -> str:
        self.count += 1
        sid = await self.manager.connect(f"eio-{self.count}", NAMESPACE)
        for room in rooms:
            await self.manager.enter_room(sid, NAMESPACE, room)
        if register:
            self.register(sid, user_id, session_id)
        return str(sid)

    def register(self, sid: str, user_id: str, session_id: str | None) -> None:
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        identity = Identity(uuid.UUID(user_id), session_id, expires, user_id, user_id)
        self.manager.local_sockets.add(LocalSocket(sid, identity, asyncio.Semaphore(1)))

    def rooms(self, sid: str) -> set[str]:
        return {room for room in self.manager.get_rooms(sid, NAMESPACE) if room != sid}

    async def _record_disconnect(self, sid: str, **_: Any) -> None:
        self.disconnected.append(sid)

    async def _record_emit(self, event: str, data: Any, to: str, **_: Any) -> None:
        self.emitted.append((event, data, to))


async def test_the_index_finds_sockets_by_user_and_session_and_forgets_them() -> None:
    node = Node()
    phone = await node.connect(U1, "s1")
    laptop = await node.connect(U1, "s2")
    other = await node.connect(U2, None)
    index = node.manager.local_sockets
    assert index.selected_by({"users": [U1]}) == sorted([phone, laptop])
    assert index.selected_by({"sessions": ["s2"], "users": [U2]}) == sorted([laptop, other])
    assert index.selected_by({"sessions": ["nope"]}) == []
    assert index.remove(phone) is not None
    assert index.remove(phone) is None
    assert index.of_user(U1) == [laptop]
    assert phone not in index
    assert list(index) == [laptop, other]


async def test_an_identity_operation_reaches_sockets_whatever_rooms_they_hold() -> None:
    node = Node()
    kept_out = await node.connect(U1, "s1", "group:x")
    in_rooms = await node.connect(U1, "s2", f"user:{U1}", "group:x", "active:x")
    bystander = await node.connect(U2, "s3", f"user:{U2}", "group:x")
    await node.manager.room_operation({"op": "leave", "users": [U1], "targets": ["group:x", "active:x"]})
    assert node.rooms(kept_out) == set()
    assert node.rooms(in_rooms) == {f"user:{U1}"}
    assert node.rooms(bystander) == {f"user:{U2}", "group:x"}
    data = {"reason": "logout", "message": "bye"}
    await node.manager.room_operation(
        {"op": "disconnect", "sessions": ["s1"], "event": "force_logout", "data": data}
    )
    assert node.disconnected == [kept_out]
    assert node.emitted == [("force_logout", data, kept_out)]


async def test_a_socket_registered_after_an_operation_catches_up_with_it() -> None:
    node = Node()
    before = time.monotonic()
    late = await node.connect(U1, "s1", f"user:{U1}", "group:x", "group:y", register=False)
    await node.manager.room_operation({"op": "leave", "users": [U1], "targets": ["group:x"]})
    await node.manager.room_operation({"op": "leave", "users": [U9], "targets": ["group:y"]})
    assert node.rooms(late) == {f"user:{U1}", "group:x", "group:y"}, "not indexed yet: not found"
    node.register(late, U1, "s1")
    assert await node.manager.catch_up(late, before) is False
    assert node.rooms(late) == {f"user:{U1}", "group:y"}, "only the operation that concerns it"


async def test_catching_up_reports_a_missed_disconnect_and_ignores_older_operations() -> None:
    node = Node()
    await node.manager.room_operation({"op": "leave", "users": [U1], "targets": ["group:old"]})
    after_that = time.monotonic()
    late = await node.connect(U1, "s1", "group:old", register=False)
    await node.manager.room_operation({"op": "disconnect", "sessions": ["s1"]})
    node.register(late, U1, "s1")
    assert await node.manager.catch_up(late, after_that) is True
    assert node.disconnected == [], "the caller decides: a handshake refuses instead"
    assert node.rooms(late) == {"group:old"}, "an operation from before the check is not replayed"
