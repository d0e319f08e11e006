"""What others can do to a user's connection is bounded: real server processes, real Socket.IO clients.

A small window (SESSION_READY_CONVERSATIONS=5) and room limit (SOCKET_MAX_ROOMS=10) make the bounds
visible with a few dozen conversations; rate limits are off, as an attacker with many accounts would
get past them. On PostgreSQL + Redis there are two nodes: the attacker's REST calls go to the first,
the victim's sockets to the second.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.backends import Backend
from tests.support.clients import RecordingClient, connect_ready, external_token
from tests.support.raw import raw
from tests.support.server import ServerProcess, running

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)
WINDOW = 5
MAX_ROOMS = 10


@pytest.fixture(scope="module")
def nodes(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    logs = tmp_path_factory.mktemp("bounds")
    env = backend.env(
        RATE_LIMIT_ENABLED="false", SESSION_READY_CONVERSATIONS=str(WINDOW), SOCKET_MAX_ROOMS=str(MAX_ROOMS)
    )
    count = 2 if backend.redis_url else 1
    with running([ServerProcess(env, logs / f"node-{index}.log") for index in range(count)]) as started:
        yield started


@dataclass
class User:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    nodes: list[ServerProcess]
    http: httpx.AsyncClient
    clients: Callable[[], RecordingClient]

    async def user(self) -> User:
        """A user of an external issuer, provisioned by a first request."""
        user_id = str(uuid.uuid4())
        user = User(user_id, external_token(self.nodes[0], user_id))
        assert (await self.http.get("/api/auth/me", headers=user.headers)).status_code == 200
        return user

    async def group(self, owner: User, *others: User) -> str:
        body = {"kind": "group", "title": "spam", "participant_ids": [o.id for o in others]}
        response = await self.http.post("/api/conversations", json=body, headers=owner.headers)
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["data"]["id"]
        return conversation_id

    async def send(self, sender: User, conversation_id: str, body: str) -> dict[str, Any]:
        path = f"/api/conversations/{conversation_id}/messages"
        response = await self.http.post(path, json={"body": body}, headers=sender.headers)
        assert response.status_code == 201, response.text
        message: dict[str, Any] = response.json()["data"]
        return message

    async def connect(self, user: User) -> RecordingClient:
        return await connect_ready(self.clients, self.nodes[-1], user.token)


@pytest.fixture
async def world(nodes: list[ServerProcess], clients: Callable[[], RecordingClient]) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=15) as http:
        yield World(nodes, http, clients)


def groups(rooms: list[str]) -> list[str]:
    return [room for room in rooms if room.startswith("group:")]


def received(client: RecordingClient, conversation_id: str) -> list[int]:
    return [
        e["message"]["seq"]
        for e in client.events["chat:message"]
        if e["message"]["conversation_id"] == conversation_id
    ]


async def test_connect_is_bounded_whatever_others_add_you_to(world: World) -> None:
    attacker, victim = await world.user(), await world.user()
    spam = [await world.group(attacker, victim) for _ in range(30)]
    for conversation_id in spam:
        await world.send(attacker, conversation_id, "x" * 4000)
    sock = await world.connect(victim)
    ready = sock.events["session:ready"][0]
    size = len(json.dumps(ready, separators=(",", ":")).encode())
    logger.info("victim in 30 groups: session:ready %d bytes, %d rooms", size, len(ready["rooms"]))
    newest_first = list(reversed(spam))
    assert groups(ready["rooms"]) == sorted(f"group:{cid}" for cid in newest_first[:WINDOW])
    unread = ready["unread"]
    assert [c["conversation_id"] for c in unread["conversations"]] == newest_first[:WINDOW]
    assert unread["total"] == 30, "the total counts every conversation"
    assert unread["more"] is True
    assert size < 40_000, "five last messages of 4,000 characters, not thirty"

    page = await world.http.get(
        "/api/conversations", params={"cursor": unread["next_cursor"], "limit": 100}, headers=victim.headers
    )
    assert [item["id"] for item in page.json()["data"]["items"]] == newest_first[WINDOW:]
    older = newest_first[-1]
    joined = await sock.call("room:join", {"room": f"group:{older}"})
    assert joined["ok"] is True, joined
    sent = await world.send(attacker, older, "now you follow this one")
    assert (await sock.wait_for("chat:message"))["message"]["id"] == sent["id"]


async def test_a_muted_conversation_stops_reaching_the_sockets(world: World) -> None:
    friend, victim = await world.user(), await world.user()
    loud, quiet = await world.group(friend, victim), await world.group(friend, victim)
    sock = await world.connect(victim)
    await world.send(friend, quiet, "before")
    muted = await sock.call("conversation:mute", {"conversation_id": quiet, "muted": True})
    assert muted == {"ok": True, "data": {"conversation_id": quiet, "muted": True}}
    update = await sock.wait_for("unread:update")
    assert update == {"conversation_id": quiet, "unread": 1, "total": 0}, "the muted one leaves the total"

    await world.send(friend, quiet, f"muted, even with a mention of {victim.id}")
    marker = await world.send(friend, loud, "marker")
    assert (await sock.wait_for("chat:message", index=1))["message"]["id"] == marker["id"]
    assert received(sock, quiet) == [1], "nothing from the muted conversation after the mute"

    again = await world.connect(victim)
    assert f"group:{quiet}" not in again.events["session:ready"][0]["rooms"]
    assert f"group:{loud}" in again.events["session:ready"][0]["rooms"]

    unmuted = await sock.call("conversation:mute", {"conversation_id": quiet, "muted": False})
    assert unmuted["ok"] is True
    back = await world.send(friend, quiet, "back")
    assert (await again.wait_for("chat:message"))["message"]["id"] == back["id"]
    # sock's third message ("before", "marker", now this one): the sockets get it in either order
    assert (await sock.wait_for("chat:message", index=2))["message"]["id"] == back["id"], (
        "unmuting joined every socket of the user again"
    )
    outsider = await world.user()
    refused = await (await world.connect(outsider)).call(
        "conversation:mute", {"conversation_id": loud, "muted": True}
    )
    assert refused["error"]["code"] == "FORBIDDEN"


async def test_being_added_stops_joining_rooms_at_the_room_limit(world: World) -> None:
    adder, victim = await world.user(), await world.user()
    sock = await world.connect(victim)
    held = len(sock.events["session:ready"][0]["rooms"])
    new = [await world.group(adder, victim) for _ in range(MAX_ROOMS - held + 2)]
    for index, cid in enumerate(new):
        created = await sock.wait_for("conversation:updated", index=index)
        assert created["conversation"]["id"] == cid, (
            "every new conversation is heard, through the user's room"
        )
    for cid in new:
        await world.send(adder, cid, "hello")
    marker = await world.send(adder, new[0], "marker")
    await sock.wait_for("chat:message", index=MAX_ROOMS - held)
    assert sock.events["chat:message"][-1]["message"]["id"] == marker["id"]
    assert [cid for cid in new if received(sock, cid)] == new[: MAX_ROOMS - held], "joined up to the limit"
    full = await sock.call("room:join", {"room": f"group:{new[-1]}"})
    assert full["error"]["code"] == "RATE_LIMITED"
    assert (await sock.call("room:leave", {"room": f"group:{new[0]}"}))["ok"] is True
    assert (await sock.call("room:join", {"room": f"group:{new[-1]}"}))["ok"] is True


async def test_chat_sync_answers_what_it_cannot_sync_in_its_own_entry(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    mine, theirs = await world.group(alice), await world.group(bob)
    for index in range(3):
        await world.send(alice, mine, f"m{index}")
    sock = await world.connect(alice)
    unknown = str(uuid.uuid4())
    ack = await sock.call(
        "chat:sync",
        {
            "conversations": [
                {"conversation_id": mine, "after_seq": 1},
                {"conversation_id": theirs, "after_seq": 0},
                {"conversation_id": unknown, "after_seq": 0},
            ],
            "limit": 10,
        },
    )
    assert ack["ok"] is True, ack
    entries = {entry["conversation_id"]: entry for entry in ack["data"]["conversations"]}
    assert [m["seq"] for m in entries[mine]["messages"]] == [2, 3]
    assert entries[mine]["error"] is None
    assert entries[theirs]["error"]["code"] == "FORBIDDEN"
    assert entries[unknown]["error"]["code"] == "NOT_FOUND"
    for cid in (theirs, unknown):
        assert (entries[cid]["messages"], entries[cid]["last_seq"], entries[cid]["recovered"]) == (
            [],
            0,
            False,
        )
    beyond = await sock.call(
        "chat:sync",
        {
            "conversations": [
                {"conversation_id": theirs, "after_seq": 0},
                {"conversation_id": mine, "after_seq": 9},
            ]
        },
    )
    assert beyond["error"]["code"] == "VALIDATION_ERROR", "a cursor past the last seq is a bad request"
    assert beyond["error"]["details"]["field"] == "conversations.1.after_seq"


async def test_hostile_payloads_get_validation_errors_naming_the_field(world: World) -> None:
    alice = await world.user()
    cid = await world.group(alice)
    sock = await world.connect(alice)
    cases = [
        ({"body": "a\x00b"}, "body"),
        ({"body": "evil\u202eplan"}, "body"),
        ({"body": "bell\x07"}, "body"),
        ({"client_msg_id": "id-1\n"}, "client_msg_id"),
        ({"body": "x" * 4001}, "body"),
    ]
    for change, field in cases:
        payload = {"conversation_id": cid, "body": "fine", "client_msg_id": uuid.uuid4().hex, **change}
        ack = await sock.call("chat:send", payload)
        assert ack["ok"] is False, change
        assert (ack["error"]["code"], ack["error"]["details"]["field"]) == ("VALIDATION_ERROR", field), ack
    at_limit = await sock.call(
        "chat:send", {"conversation_id": cid, "body": "x" * 4000, "client_msg_id": "limit"}
    )
    assert at_limit["ok"] is True
    deep = "[" * 1000 + "]" * 1000
    async with raw(world.nodes[-1], alice.token) as socket:
        await socket.send(f'421["chat:send",{deep}]')
        answer = await socket.ack(1)
        assert answer["ok"] is False
        assert (answer["error"]["code"], answer["error"]["details"]["field"]) == (
            "VALIDATION_ERROR",
            "payload",
        )
        assert (await socket.call("conversation:focus", {"conversation_id": cid}))["ok"] is True, (
            "still served"
        )


async def test_the_room_hears_who_owns_a_group_its_owner_left(world: World) -> None:
    owner, member = await world.user(), await world.user()
    cid = await world.group(owner, member)
    sock = await world.connect(member)
    owner_sock = await world.connect(owner)
    assert (await owner_sock.call("conversation:leave", {"conversation_id": cid}))["ok"] is True
    removed = await sock.wait_for("conversation:participant_removed")
    assert removed == {"conversation_id": cid, "user_id": owner.id, "by": owner.id, "new_owner": member.id}
