"""`IndexedRoomsManager` keeps the state python-socketio's manager keeps, step by step, while finding
a socket's rooms from its own index."""

from __future__ import annotations

import random
from typing import Any

import pytest
import socketio

from app.core.socket.engine.managers import IndexedRoomsManager

NAMESPACES = ["/", "/other"]
ROOMS = ["game:1", "game:2", "user:a", "chat:x"]


def state(manager: Any) -> dict[str, Any]:
    """What python-socketio keeps per manager, in plain containers."""
    return {
        "rooms": {
            ns: {room: dict(members) for room, members in rooms.items()}
            for ns, rooms in manager.rooms.items()
        },
        "callbacks": dict(manager.callbacks),
        "pending_connect": {ns: sorted(sids) for ns, sids in manager.pending_connect.items()},
        "pending_disconnect": {ns: sorted(sids) for ns, sids in manager.pending_disconnect.items()},
    }


def step(manager: Any, rng: random.Random, sids: list[str]) -> None:
    """One operation chosen by `rng` (both managers get the same sequence of choices)."""
    sid, namespace, room = rng.choice(sids), rng.choice(NAMESPACES), rng.choice(ROOMS)
    action = rng.randrange(7)
    connected = manager.is_connected(sid, namespace) or manager.is_pre_connected(sid, namespace)
    if action == 0 and not connected:
        manager.basic_enter_room(sid, namespace, None, eio_sid=f"eio-{sid}")
        manager.basic_enter_room(sid, namespace, sid, eio_sid=f"eio-{sid}")
        manager.pending_connect.setdefault(namespace, []).append(sid)
    elif action == 1 and manager.is_pre_connected(sid, namespace):
        manager.connect(sid, namespace)
    elif action == 2 and connected:
        manager.basic_enter_room(sid, namespace, room)
    elif action == 3:
        manager.basic_leave_room(sid, namespace, room)
    elif action == 4 and connected:
        manager.callbacks.setdefault(sid, {})[rng.randrange(3)] = print
        manager.pre_disconnect(sid, namespace)
    elif action == 5:
        manager.basic_disconnect(sid, namespace)
    elif action == 6 and rng.random() < 0.2:
        manager.basic_close_room(room, namespace)


@pytest.mark.parametrize("seed", range(20))
def test_every_step_leaves_the_state_python_socketio_leaves(seed: int) -> None:
    ours, theirs = IndexedRoomsManager(), socketio.AsyncManager()
    sids = [f"s{index}" for index in range(6)]
    ours_rng, theirs_rng = random.Random(seed), random.Random(seed)
    for _ in range(300):
        step(ours, ours_rng, sids)
        step(theirs, theirs_rng, sids)
        assert state(ours) == state(theirs)
        for sid in sids:
            for namespace in NAMESPACES:
                assert sorted(ours.get_rooms(sid, namespace), key=str) == sorted(
                    theirs.get_rooms(sid, namespace), key=str
                )


def test_a_disconnected_socket_leaves_no_trace_in_the_index() -> None:
    manager = IndexedRoomsManager()
    manager.basic_enter_room("s1", "/", None, eio_sid="eio-1")
    manager.basic_enter_room("s1", "/", "s1", eio_sid="eio-1")
    manager.basic_enter_room("s1", "/", "game:1")
    assert manager.get_rooms("s1", "/") == ["s1", "game:1"]
    manager.basic_disconnect("s1", "/")
    assert manager.rooms_by_sid == {}
    assert manager.rooms == {}
