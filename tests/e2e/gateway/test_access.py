"""Access ends when its reason ends, whatever rooms a socket holds.

A socket cannot leave its identity rooms (`user:`, `session:`); and even a socket that is out of them
(it asked and was refused, then a server-side module, the sample `game:`, moved it out) is found by
its identity when its session is revoked (logout, admin, login policy, refresh-token reuse) or its
user is removed from a conversation. A presence subscription ends with the last conversation the
two users shared.

On PostgreSQL + Redis the sockets under test sit on the second node and every change is made through
the first, so each case crosses nodes; on SQLite one node does both. Where a test shows that a socket
did NOT receive something, it waits for a later event on the same node first (a marker), then for an
ack on the socket itself: events to one socket arrive in order.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.backends import Backend
from tests.support.clients import Account, RecordingClient, login, register_admin, register_directly
from tests.support.server import ServerProcess, running

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)  # the timing figures, shown with --log-cli-level=INFO

GAME = "tests.support.game:create_asgi"
ENV = {"REFRESH_REUSE_GRACE": "0", "LOG_LEVEL": "INFO", "PRESENCE_TTL": "3"}
TIMING_TRIALS = 5


@pytest.fixture(scope="module")
def nodes(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two nodes on PostgreSQL + Redis, one on SQLite; changes go through `nodes[0]`, sockets under
    test connect to `nodes[-1]`."""
    logs = tmp_path_factory.mktemp("access")
    count = 2 if backend.redis_url else 1
    with running(
        [ServerProcess(backend.env(**ENV), logs / f"node-{i}.log", GAME) for i in range(count)]
    ) as made:
        yield made


@dataclass
class World:
    backend: Backend
    nodes: list[ServerProcess]
    http: httpx.AsyncClient
    made: list[RecordingClient]

    @property
    def near(self) -> ServerProcess:
        return self.nodes[0]

    @property
    def far(self) -> ServerProcess:
        return self.nodes[-1]

    async def user(self, device: str | None = None) -> Account:
        """A new user whose password is cheap to check (see `register_directly`), logged in."""
        return await register_directly(self.http, self.backend.settings(), device=device)

    async def connect(self, account: Account | str, node: ServerProcess | None = None) -> RecordingClient:
        client = RecordingClient()
        self.made.append(client)
        token = account if isinstance(account, str) else account.access_token
        await client.connect((node or self.far).url, token)
        await client.wait_for("session:ready")
        return client

    async def post(self, path: str, account: Account, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body, headers=bearer(account))

    async def group(self, owner: Account, *others: Account) -> str:
        body = {"kind": "group", "title": "access", "participant_ids": [o.user_id for o in others]}
        response = await self.post("/api/conversations", owner, body)
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["data"]["id"]
        return conversation_id

    async def wait_for_log(self, node: ServerProcess, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in node.log():
            assert time.monotonic() < deadline, f"{text!r} never appeared in the log"
            await asyncio.sleep(0.05)


@pytest.fixture
async def world(backend: Backend, nodes: list[ServerProcess]) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=30) as http:
        made = World(backend, nodes, http, [])
        yield made
        for client in made.made:
            await client.close()


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


def ok(ack: dict[str, Any]) -> Any:
    assert ack["ok"] is True, ack
    return ack["data"]


async def news_until(client: RecordingClient, last: str, since: int) -> list[str]:
    """The `game:news` texts `client` heard after the first `since`, up to and including `last`."""
    heard: list[str] = []
    index = since
    while not heard or heard[-1] != last:
        heard.append((await client.wait_for("game:news", index=index))["text"])
        index += 1
    return heard


async def settled(client: RecordingClient) -> None:
    """An ack on the socket: whatever the server queued for it before has arrived."""
    ok(await client.call("room:leave", {"room": "broadcast:nowhere"}))


async def escape(world: World, sock: RecordingClient, account: Account) -> None:
    """Get `sock` out of its identity rooms: asking is refused, so a server module moves it out."""
    rooms = [f"user:{account.user_id}", f"session:{account.session_id}"]
    for room in rooms:
        refused = await sock.call("room:leave", {"room": room})
        assert refused["ok"] is False, refused
        assert refused["error"]["code"] == "FORBIDDEN"
    mover = await world.connect(await world.user(), world.near)
    for room in rooms:
        ok(await mover.call("game:scatter", {"room": room, "target": room}))
    table = f"game:{uuid.uuid4().hex[:8]}-open"
    ok(await sock.call("room:join", {"room": table}))
    since = len(sock.events["game:news"])
    ok(await mover.call("game:shout", {"room": rooms[0], "text": "still in user:"}))
    ok(await mover.call("game:shout", {"room": table, "text": "moved"}))
    assert await news_until(sock, "moved", since) == ["moved"], "the socket is still in its user: room"


# --- identity rooms ------------------------------------------------------------------------------


async def test_identity_rooms_cannot_be_left(world: World) -> None:
    account, other = await world.user(), await world.user()
    sock = await world.connect(account)
    for room in (f"user:{account.user_id}", f"session:{account.session_id}"):
        refused = await sock.call("room:leave", {"room": room})
        assert refused["ok"] is False
        assert refused["error"]["code"] == "FORBIDDEN"
        assert "identity room" in refused["error"]["message"]
    assert ok(await sock.call("room:leave", {"room": f"user:{other.user_id}"})) == {
        "room": f"user:{other.user_id}"
    }, "leaving a room one is not in still succeeds"
    shouter = await world.connect(other, world.near)
    for index, room in enumerate((f"user:{account.user_id}", f"session:{account.session_id}")):
        ok(await shouter.call("game:shout", {"room": room, "text": room}))
        assert (await sock.wait_for("game:news", index=index))["text"] == room


# --- revocation ----------------------------------------------------------------------------------


async def revoke(world: World, account: Account, how: str) -> str:
    """End `account`'s session `how`; answer the `force_logout` reason its sockets must get."""
    if how == "logout":
        assert (await world.post("/api/auth/logout", account)).status_code == 200
        return "logout"
    if how == "admin":
        admin = await register_admin(world.http, world.backend.settings())
        path = f"/api/admin/users/{account.user_id}/force-logout"
        assert (await world.post(path, admin)).status_code == 200
        return "admin"
    if how == "login_policy":
        await login(world.http, account.username)
        return "duplicate_login"
    rotated = await world.http.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert rotated.status_code == 200
    replayed = await world.http.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert replayed.status_code == 401
    return "session_revoked"


@pytest.mark.parametrize("how", ["logout", "admin", "login_policy", "refresh_reuse"])
async def test_revocation_reaches_a_socket_out_of_its_identity_rooms(world: World, how: str) -> None:
    account = await world.user()
    sock = await world.connect(account)
    await escape(world, sock, account)
    reason = await revoke(world, account, how)
    assert (await sock.wait_for("force_logout"))["reason"] == reason
    await asyncio.wait_for(sock.disconnected.wait(), 5)


async def test_auth_refresh_with_a_token_of_a_revoked_session_fails(world: World) -> None:
    phone = await world.user(device="phone")
    laptop = await login(world.http, phone.username, device="laptop")
    sock = await world.connect(laptop)
    assert (await world.post("/api/auth/logout", phone)).status_code == 200
    refused = await sock.call("auth:refresh", {"token": phone.access_token})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "SESSION_REVOKED"


async def test_revocation_disconnects_within_a_second(world: World) -> None:
    """From the logout request on one node to the disconnect of a socket on the other."""
    account = await world.user()
    timings = []
    for index in range(TIMING_TRIALS):
        session = await login(world.http, account.username, device=f"timing-{index}")
        sock = await world.connect(session)
        started = time.perf_counter()
        assert (await world.post("/api/auth/logout", session)).status_code == 200
        await asyncio.wait_for(sock.disconnected.wait(), 5)
        timings.append(time.perf_counter() - started)
    logger.info(
        "logout to disconnect on %s (%d nodes), %d trials: min %.1f ms, median %.1f ms, max %.1f ms",
        world.backend.name,
        len(world.nodes),
        TIMING_TRIALS,
        min(timings) * 1000,
        statistics.median(timings) * 1000,
        max(timings) * 1000,
    )
    assert max(timings) < 1.0, timings


# --- removal -------------------------------------------------------------------------------------


async def remove(world: World, owner: Account, member: Account, conversation_id: str, how: str) -> None:
    if how == "removed":
        path = f"/api/conversations/{conversation_id}/participants/{member.user_id}"
        response = await world.http.delete(path, headers=bearer(owner))
        assert response.status_code == 200, response.text
    elif how == "left":
        other_tab = await world.connect(member, world.near)
        ok(await other_tab.call("conversation:leave", {"conversation_id": conversation_id}))
    else:
        response = await world.http.delete(f"/api/conversations/{conversation_id}", headers=bearer(owner))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("how", ["removed", "left", "deleted"])
async def test_removal_reaches_a_socket_out_of_its_user_room(world: World, how: str) -> None:
    owner, member = await world.user(), await world.user()
    conversation_id = await world.group(owner, member)
    sock = await world.connect(member)
    assert f"group:{conversation_id}" in sock.events["session:ready"][0]["rooms"]
    ok(await sock.call("conversation:focus", {"conversation_id": conversation_id}))
    await escape(world, sock, member)
    table = f"game:{uuid.uuid4().hex[:8]}-open"
    ok(await sock.call("room:join", {"room": table}))
    await remove(world, owner, member, conversation_id, how)
    shouter = await world.connect(owner, world.near)
    since = len(sock.events["game:news"])
    for room in (f"group:{conversation_id}", f"active:{conversation_id}", table):
        ok(await shouter.call("game:shout", {"room": room, "text": room}))
    assert await news_until(sock, table, since) == [table], "the socket still hears the conversation's rooms"


# --- presence ------------------------------------------------------------------------------------


@pytest.mark.parametrize("follower_is", ["the removed user", "the one who stays"])
async def test_a_presence_follow_ends_with_the_last_shared_conversation(
    world: World, follower_is: str
) -> None:
    owner, member, observer = [await world.user() for _ in range(3)]
    conversation_id = await world.group(owner, member)
    await world.group(observer, owner)
    await world.group(observer, member)
    follower, followed = (member, owner) if follower_is == "the removed user" else (owner, member)
    watching = await world.connect(follower)
    ok(await watching.call("presence:subscribe", {"user_ids": [followed.user_id]}))
    still_watching = await world.connect(observer)
    ok(await still_watching.call("presence:subscribe", {"user_ids": [followed.user_id]}))

    path = f"/api/conversations/{conversation_id}/participants/{member.user_id}"
    assert (await world.http.delete(path, headers=bearer(owner))).status_code == 200
    await world.wait_for_log(world.far, f"presence between {member.user_id} and 1 users ended")

    await world.connect(followed, world.near)
    assert await still_watching.wait_for("user:status") == {
        "user_id": followed.user_id,
        "status": "online",
        "last_seen_at": None,
    }
    await settled(watching)
    assert not watching.events.get("user:status"), "the follow outlived the shared conversation"
