"""Presence and typing end to end, with conversations made through the chat REST API.

On PostgreSQL + Redis the observer and the observed user sit on different nodes; on SQLite + in
process both are on the one node. The node-death test (PostgreSQL + Redis only) SIGKILLs a node
and measures the time until its user is reported offline on the survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.backends import Backend
from tests.support.clients import Account, RecordingClient, register_and_login
from tests.support.server import ServerProcess, running

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

PRESENCE_TTL = 3.0
TYPING_TTL = 1.5
ENV = {"PRESENCE_TTL": PRESENCE_TTL, "TYPING_TTL": TYPING_TTL}


@contextlib.contextmanager
def running_nodes(backend: Backend, logs: Path, count: int) -> Iterator[list[ServerProcess]]:
    """`count` server processes, started side by side, stopped afterwards."""
    with running([ServerProcess(backend.env(**ENV), logs / f"node-{i}.log") for i in range(count)]) as made:
        yield made


@pytest.fixture(scope="module")
def nodes(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two nodes on PostgreSQL + Redis, one on SQLite; `nodes[0]` and `nodes[-1]` are the two ends."""
    with running_nodes(backend, tmp_path_factory.mktemp("presence"), 2 if backend.redis_url else 1) as made:
        yield made


@dataclass
class World:
    http: httpx.AsyncClient
    made: list[RecordingClient]

    async def user(self) -> Account:
        return await register_and_login(self.http)

    async def group(self, owner: Account, *others: Account) -> str:
        response = await self.http.post(
            "/api/conversations",
            json={"kind": "group", "title": "presence", "participant_ids": [o.user_id for o in others]},
            headers={"Authorization": f"Bearer {owner.access_token}"},
        )
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["data"]["id"]
        return conversation_id

    async def connect(self, node: ServerProcess, account: Account) -> RecordingClient:
        client = RecordingClient()
        self.made.append(client)
        await client.connect(node.url, account.access_token)
        await client.wait_for("session:ready")
        return client


@pytest.fixture
async def world(nodes: list[ServerProcess]) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=10) as http:
        made = World(http, [])
        yield made
        for client in made.made:
            await client.close()


def ok(ack: dict[str, Any]) -> Any:
    assert ack["ok"] is True, ack
    return ack["data"]


def failed(ack: dict[str, Any], code: str) -> dict[str, Any]:
    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == code, ack
    error: dict[str, Any] = ack["error"]
    return error


def statuses(client: RecordingClient) -> list[tuple[str, str]]:
    return [(event["user_id"], event["status"]) for event in client.events["user:status"]]


async def test_several_tabs_count_once_and_reload_does_not_flap(
    nodes: list[ServerProcess], world: World
) -> None:
    observer_account, alice = await world.user(), await world.user()
    await world.group(observer_account, alice)
    observer = await world.connect(nodes[0], observer_account)
    before = ok(await observer.call("presence:subscribe", {"user_ids": [alice.user_id]}))
    assert before == {"statuses": [{"user_id": alice.user_id, "status": "offline", "last_seen_at": None}]}

    tab = await world.connect(nodes[-1], alice)
    assert (await observer.wait_for("user:status"))["status"] == "online"
    second_tab = await world.connect(nodes[0], alice)
    await second_tab.close()
    await tab.close()
    reloaded = await world.connect(nodes[-1], alice)
    reloaded_at = dt.datetime.now(dt.UTC)
    await reloaded.close()

    offline = await observer.wait_for("user:status", index=1)
    assert dt.datetime.fromisoformat(offline["last_seen_at"]) >= reloaded_at, "went offline before the reload"
    assert statuses(observer) == [(alice.user_id, "online"), (alice.user_id, "offline")]
    now = ok(await observer.call("presence:subscribe", {"user_ids": [alice.user_id]}))
    assert now["statuses"] == [offline]


async def test_presence_is_shared_by_every_node(nodes: list[ServerProcess], world: World) -> None:
    alice, bob = await world.user(), await world.user()
    conversation = await world.group(alice, bob)
    bob_socket = await world.connect(nodes[-1], bob)
    alice_socket = await world.connect(nodes[0], alice)
    seen = ok(await alice_socket.call("presence:subscribe", {"user_ids": [bob.user_id, alice.user_id]}))
    assert [(s["user_id"], s["status"]) for s in seen["statuses"]] == [
        (bob.user_id, "online"),
        (alice.user_id, "online"),
    ]
    response = await world.http.get(
        "/api/presence",
        params={"user_ids": f"{bob.user_id},{alice.user_id}"},
        headers={"Authorization": f"Bearer {alice.access_token}"},
    )
    assert response.status_code == 200
    assert response.json()["data"] == seen

    await bob_socket.close()
    assert (await alice_socket.wait_for("user:status"))["user_id"] == bob.user_id
    assert statuses(alice_socket) == [(bob.user_id, "offline")]

    ok(await alice_socket.call("presence:unsubscribe", {"user_ids": [bob.user_id]}))
    ok(await alice_socket.call("conversation:focus", {"conversation_id": conversation}))
    bob_again = await world.connect(nodes[-1], bob)
    ok(await bob_again.call("chat:typing", {"conversation_id": conversation, "typing": True}))
    await alice_socket.wait_for("chat:typing")
    assert statuses(alice_socket) == [(bob.user_id, "offline")], "the typing event came after bob's status"


async def test_strangers_and_unknown_ids_are_left_out(nodes: list[ServerProcess], world: World) -> None:
    alice, stranger = await world.user(), await world.user()
    stranger_socket = await world.connect(nodes[-1], stranger)
    alice_socket = await world.connect(nodes[0], alice)
    unknown = str(uuid.uuid4())
    seen = ok(await alice_socket.call("presence:subscribe", {"user_ids": [stranger.user_id, unknown]}))
    assert seen == {"statuses": []}
    failed(await alice_socket.call("room:join", {"room": f"presence:{stranger.user_id}"}), "FORBIDDEN")
    ok(await alice_socket.call("room:join", {"room": f"presence:{alice.user_id}"}))

    response = await world.http.get(
        "/api/presence",
        params={"user_ids": [stranger.user_id, unknown]},
        headers={"Authorization": f"Bearer {alice.access_token}"},
    )
    assert response.json()["data"] == {"statuses": []}
    await stranger_socket.close()


async def test_malformed_presence_requests_are_validation_errors(
    nodes: list[ServerProcess], world: World
) -> None:
    alice = await world.user()
    socket = await world.connect(nodes[0], alice)
    too_many = [str(uuid.uuid4()) for _ in range(300)]
    assert failed(await socket.call("presence:subscribe", {"user_ids": too_many}), "VALIDATION_ERROR")[
        "details"
    ]["field"].startswith("user_ids")
    not_uuid = failed(
        await socket.call("presence:subscribe", {"user_ids": [alice.user_id, "not-a-uuid"]}),
        "VALIDATION_ERROR",
    )
    assert not_uuid["details"]["field"] == "user_ids.1"
    failed(await socket.call("presence:subscribe", {"user_ids": []}), "VALIDATION_ERROR")
    failed(await socket.call("presence:subscribe", {"user_ids": "everyone"}), "VALIDATION_ERROR")
    failed(await socket.call("presence:unsubscribe", {"user_ids": [42]}), "VALIDATION_ERROR")

    headers = {"Authorization": f"Bearer {alice.access_token}"}
    for params in ({"user_ids": "not-a-uuid"}, {"user_ids": ",".join(too_many)}, {}):
        response = await world.http.get("/api/presence", params=params, headers=headers)
        assert response.status_code in {400, 422}, response.text
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await world.http.get("/api/presence", params={"user_ids": alice.user_id})).status_code == 401


async def test_typing_reaches_focused_viewers_only_and_expires(
    nodes: list[ServerProcess], world: World
) -> None:
    typist_account, viewer_account, idle_account = await world.user(), await world.user(), await world.user()
    conversation = await world.group(typist_account, viewer_account, idle_account)
    typist = await world.connect(nodes[0], typist_account)
    viewer = await world.connect(nodes[-1], viewer_account)
    idle = await world.connect(nodes[0], idle_account)
    ok(await viewer.call("conversation:focus", {"conversation_id": conversation}))
    ok(await typist.call("conversation:focus", {"conversation_id": conversation}))

    started = time.monotonic()
    assert ok(await typist.call("chat:typing", {"conversation_id": conversation, "typing": True})) == {}
    ok(await typist.call("chat:typing", {"conversation_id": conversation, "typing": True}))
    shown = await viewer.wait_for("chat:typing")
    assert shown == {
        "conversation_id": conversation,
        "user_id": typist_account.user_id,
        "typing": True,
        "expires_in": TYPING_TTL,
    }
    lapsed = await viewer.wait_for("chat:typing", index=1, timeout=TYPING_TTL * 4)
    assert lapsed["typing"] is False
    assert time.monotonic() - started >= TYPING_TTL * 0.9
    assert [event["typing"] for event in viewer.events["chat:typing"]] == [True, False]
    assert typist.events["chat:typing"] == []
    assert idle.events["chat:typing"] == []


async def test_typing_stops_on_request_and_on_disconnect(nodes: list[ServerProcess], world: World) -> None:
    typist_account, viewer_account = await world.user(), await world.user()
    conversation = await world.group(typist_account, viewer_account)
    viewer = await world.connect(nodes[-1], viewer_account)
    ok(await viewer.call("conversation:focus", {"conversation_id": conversation}))
    typist = await world.connect(nodes[0], typist_account)

    ok(await typist.call("chat:typing", {"conversation_id": conversation, "typing": True}))
    await viewer.wait_for("chat:typing")
    ok(await typist.call("chat:typing", {"conversation_id": conversation, "typing": False}))
    assert (await viewer.wait_for("chat:typing", index=1))["typing"] is False
    ok(await typist.call("chat:typing", {"conversation_id": conversation, "typing": True}))
    assert (await viewer.wait_for("chat:typing", index=2))["typing"] is True
    await typist.close()
    assert (await viewer.wait_for("chat:typing", index=3, timeout=TYPING_TTL / 2))["typing"] is False


async def test_blurring_the_conversation_stops_typing(nodes: list[ServerProcess], world: World) -> None:
    typist_account, viewer_account = await world.user(), await world.user()
    conversation = await world.group(typist_account, viewer_account)
    viewer = await world.connect(nodes[-1], viewer_account)
    ok(await viewer.call("conversation:focus", {"conversation_id": conversation}))
    typist = await world.connect(nodes[0], typist_account)
    ok(await typist.call("conversation:focus", {"conversation_id": conversation}))

    ok(await typist.call("chat:typing", {"conversation_id": conversation, "typing": True}))
    assert (await viewer.wait_for("chat:typing"))["typing"] is True
    ok(await typist.call("conversation:blur", {"conversation_id": conversation}))
    stopped = await viewer.wait_for("chat:typing", index=1, timeout=TYPING_TTL / 2)
    assert stopped["typing"] is False
    assert stopped["user_id"] == typist_account.user_id


async def test_typing_outside_your_conversations_is_refused(nodes: list[ServerProcess], world: World) -> None:
    owner, member, stranger_account = await world.user(), await world.user(), await world.user()
    conversation = await world.group(owner, member)
    stranger = await world.connect(nodes[0], stranger_account)
    failed(await stranger.call("chat:typing", {"conversation_id": conversation, "typing": True}), "FORBIDDEN")
    failed(
        await stranger.call("chat:typing", {"conversation_id": str(uuid.uuid4()), "typing": True}),
        "FORBIDDEN",
    )
    bad_id = failed(
        await stranger.call("chat:typing", {"conversation_id": "nope", "typing": True}), "VALIDATION_ERROR"
    )
    assert bad_id["details"]["field"] == "conversation_id"
    failed(await stranger.call("chat:typing", {"conversation_id": conversation}), "VALIDATION_ERROR")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_stopped_and_killed_nodes_users_go_offline_on_the_survivor(
    backend: Backend, tmp_path: Path
) -> None:
    """Node death needs a second node, so this runs on PostgreSQL + Redis only."""
    with running_nodes(backend, tmp_path, 3) as (survivor, stopped, doomed):
        await stop_one_kill_one(survivor, stopped, doomed)


async def stop_one_kill_one(survivor: ServerProcess, stopped: ServerProcess, doomed: ServerProcess) -> None:
    """The survivor reports the stopped node's user offline at once, the killed node's within the TTL."""
    async with httpx.AsyncClient(base_url=survivor.url, timeout=10) as http:
        world = World(http, [])
        try:
            observer_account, leaver, victim = await world.user(), await world.user(), await world.user()
            await world.group(observer_account, leaver, victim)
            observer = await world.connect(survivor, observer_account)
            ok(await observer.call("presence:subscribe", {"user_ids": [leaver.user_id, victim.user_id]}))
            await world.connect(stopped, leaver)
            await world.connect(doomed, victim)
            await observer.wait_for("user:status", index=1)

            stopping = asyncio.create_task(asyncio.to_thread(stopped.stop))
            left = await observer.wait_for("user:status", index=2, timeout=PRESENCE_TTL)
            await stopping
            doomed.kill()
            killed_at = time.monotonic()
            offline = await observer.wait_for("user:status", index=3, timeout=2 * PRESENCE_TTL)
            elapsed = time.monotonic() - killed_at
        finally:
            for client in world.made:
                await client.close()
    assert (left["user_id"], left["status"]) == (leaver.user_id, "offline")
    assert (offline["user_id"], offline["status"]) == (victim.user_id, "offline")
    assert offline["last_seen_at"] is not None
    logger.warning("SIGKILL → user:status offline in %.2fs (PRESENCE_TTL=%ss)", elapsed, PRESENCE_TTL)
    assert elapsed <= PRESENCE_TTL * 1.5
