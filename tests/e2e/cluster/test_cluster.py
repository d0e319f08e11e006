"""Two server processes on one PostgreSQL and one Redis (or one Redis Cluster) behave as one server.

Room operations, fan-out and `force_logout` started on node A reach sockets on node B. Only the
scaled-out backend has several nodes; the SQLite runs are skipped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.backends import Backend
from tests.support.clients import (
    connect_ready,
    external_token,
    login,
    register_admin,
    register_and_login,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

GAME = "tests.support.game:create_asgi"
ENV = {"LOGIN_POLICY": "single", "SOCKET_MAX_PER_USER": "3", "RATE_LIMIT_DEFAULT": "200/1"}
"""A socket's events per second are raised for the 150 joins, leaves and shouts of the join race."""


@pytest.fixture(scope="module")
def nodes(
    backend: Backend, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    logs = tmp_path_factory.mktemp("cluster")
    a = ServerProcess(backend.env(**ENV, REDIS_URL=redis_url), logs / "a.log", GAME)
    b = ServerProcess(backend.env(**ENV, REDIS_URL=redis_url), logs / "b.log", GAME)
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def http(nodes: tuple[ServerProcess, ServerProcess]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=10) as client:
        yield client


async def test_an_event_emitted_on_one_node_reaches_rooms_on_the_other(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    a, b = nodes
    alice, bob = await register_and_login(http), await register_and_login(http)
    speaker = await connect_ready(clients, a, alice.access_token)
    listener = await connect_ready(clients, b, bob.access_token)
    assert (await listener.call("room:join", {"room": "game:fanout-open"}))["ok"]
    assert (await speaker.call("game:shout", {"room": "game:fanout-open", "text": "across"}))["ok"]
    assert await listener.wait_for("game:news") == {"text": "across", "by": alice.user_id}


async def test_every_emit_right_after_a_join_on_the_other_node_arrives(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    """`room:join` is answered once Redis confirmed the node's subscription to the room's channel (on
    a cluster, by the master owning its slot): 50 rounds of joining a fresh room on B and shouting to
    it from A at once, each shout heard, then leaving and joining one room again the same way."""
    a, b = nodes
    alice, bob = await register_and_login(http), await register_and_login(http)
    speaker = await connect_ready(clients, a, alice.access_token)
    listener = await connect_ready(clients, b, bob.access_token)
    tag = uuid.uuid4().hex[:8]
    again = f"game:again-{tag}-open"
    for index in range(50):
        room = f"game:race-{tag}-{index}-open"
        assert (await listener.call("room:join", {"room": room}))["ok"]
        assert (await speaker.call("game:shout", {"room": room, "text": f"joined {index}"}))["ok"]
        assert (await listener.wait_for("game:news", index=2 * index))["text"] == f"joined {index}"
        assert (await listener.call("room:leave", {"room": again}))["ok"]
        assert (await listener.call("room:join", {"room": again}))["ok"]
        assert (await speaker.call("game:shout", {"room": again, "text": f"again {index}"}))["ok"]
        assert (await listener.wait_for("game:news", index=2 * index + 1))["text"] == f"again {index}"


async def test_sockets_join_and_leave_reach_sockets_on_another_node(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    a, b = nodes
    alice, bob = await register_and_login(http), await register_and_login(http)
    table = f"game:{uuid.uuid4().hex[:8]}-open"
    director = await connect_ready(clients, a, alice.access_token)
    player = await connect_ready(clients, b, bob.access_token)
    bystander = await connect_ready(clients, b, (await register_and_login(http)).access_token)
    gathered = await director.call("game:gather", {"room": f"user:{bob.user_id}", "target": table})
    assert gathered == {"ok": True, "data": {"done": True}}
    assert (await director.call("game:shout", {"room": table, "text": "in"}))["ok"]
    assert (await player.wait_for("game:news"))["text"] == "in"
    assert (await director.call("game:scatter", {"room": f"user:{bob.user_id}", "target": table}))["ok"]
    assert (await director.call("game:shout", {"room": table, "text": "out"}))["ok"]
    assert (await director.call("game:shout", {"room": f"user:{bob.user_id}", "text": "marker"}))["ok"]
    assert (await player.wait_for("game:news", index=1))["text"] == "marker", "`out` reached a left room"
    assert not bystander.events.get("game:news"), "a socket outside the source room was moved"


async def test_disconnect_sockets_emits_first_then_disconnects_on_every_node(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    a, b = nodes
    table = f"game:{uuid.uuid4().hex[:8]}-open"
    director = await connect_ready(clients, a, (await register_and_login(http)).access_token)
    players = [
        await connect_ready(clients, node, (await register_and_login(http)).access_token)
        for node in (a, b, b)
    ]
    for player in players[:2]:
        assert (await player.call("room:join", {"room": table}))["ok"]
    assert (await director.call("game:end", {"room": table, "reason": "checkmate"}))["ok"]
    for player in players[:2]:
        assert await player.wait_for("game:over") == {"reason": "checkmate"}
        await player.disconnected.wait()
    assert players[2].sio.connected, "a socket outside the room stays"
    assert (await players[2].call("room:join", {"room": table}))["ok"]


async def test_admin_force_logout_on_one_node_disconnects_sockets_on_the_other(
    backend: Backend, nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    _a, b = nodes
    admin = await register_admin(http, backend.settings())
    victim = await register_and_login(http)
    on_b = await connect_ready(clients, b, victim.access_token)
    other = await connect_ready(clients, b, (await register_and_login(http)).access_token)
    response = await http.post(
        f"/api/admin/users/{victim.user_id}/force-logout",
        headers={"Authorization": f"Bearer {admin.access_token}"},
    )
    assert response.status_code == 200, response.text
    assert (await on_b.wait_for("force_logout"))["reason"] == "admin"
    await on_b.disconnected.wait()
    assert other.sio.connected


async def test_a_single_login_policy_login_on_one_node_logs_out_the_other(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    _a, b = nodes
    first = await register_and_login(http, device="phone")
    on_b = await connect_ready(clients, b, first.access_token)
    await login(http, first.username, device="laptop")
    assert (await on_b.wait_for("force_logout"))["reason"] == "duplicate_login"
    await on_b.disconnected.wait()


async def test_logins_at_the_same_instant_on_both_nodes_leave_one_session(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient
) -> None:
    """LOGIN_POLICY=single: of logins on several devices at once, spread over both nodes, one stays."""
    first = await register_and_login(http, device="phone")
    async with httpx.AsyncClient(base_url=nodes[1].url, timeout=30) as other:
        racing = await asyncio.gather(
            *(login(http if i % 2 else other, first.username, device=f"d{i}") for i in range(8))
        )
    statuses = [
        (await http.get("/api/auth/me", headers={"Authorization": f"Bearer {a.access_token}"})).status_code
        for a in [first, *racing]
    ]
    assert sorted(statuses) == [200] + [401] * 8, statuses


async def test_logout_on_one_node_logs_out_sockets_on_the_other(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    a, b = nodes
    account = await register_and_login(http)
    on_a = await connect_ready(clients, a, account.access_token)
    on_b = await connect_ready(clients, b, account.access_token)
    response = await http.post(
        "/api/auth/logout", headers={"Authorization": f"Bearer {account.access_token}"}
    )
    assert response.status_code == 200, response.text
    for client in (on_a, on_b):
        assert (await client.wait_for("force_logout"))["reason"] == "logout"
        await client.disconnected.wait()


async def test_a_session_ended_on_one_node_is_refused_on_the_other_at_once(
    nodes: tuple[ServerProcess, ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    """Node B saw the session live (a socket and a request) just before node A ended it: B refuses it
    on its very next check, without waiting for anything."""
    _a, b = nodes
    account = await register_and_login(http)
    headers = {"Authorization": f"Bearer {account.access_token}"}
    on_b = await connect_ready(clients, b, account.access_token)
    async with httpx.AsyncClient(base_url=b.url, timeout=10) as http_b:
        assert (await http_b.get("/api/auth/me", headers=headers)).status_code == 200
        response = await http.post("/api/auth/logout", headers=headers)
        assert response.status_code == 200, response.text
        me = await http_b.get("/api/auth/me", headers=headers)
    assert me.status_code == 401
    assert me.json()["error"]["code"] == "SESSION_REVOKED"
    refused = clients()
    with pytest.raises(Exception, match="failed to connect"):
        await refused.connect(b.url, account.access_token)
    assert refused.connect_error["data"]["code"] == "SESSION_REVOKED"
    await on_b.disconnected.wait()


async def test_sockets_per_user_are_counted_across_nodes(
    nodes: tuple[ServerProcess, ServerProcess], clients: Any
) -> None:
    a, b = nodes
    token = external_token(a)
    held = [await connect_ready(clients, node, token) for node in (a, b, b)]
    refused = clients()
    with pytest.raises(Exception, match="failed to connect"):
        await refused.connect(a.url, token)
    assert refused.connect_error["data"]["code"] == "RATE_LIMITED"
    await held[1].close()
    await connect_ready(clients, a, token)


async def test_redis_prefix_keeps_deployments_apart(
    backend: Backend,
    redis_url: str,
    nodes: tuple[ServerProcess, ServerProcess],
    start_server: Callable[..., ServerProcess],
    clients: Any,
) -> None:
    a, b = nodes
    stranger_node = start_server(
        backend, factory=GAME, REDIS_URL=redis_url, REDIS_PREFIX=f"{backend.redis_prefix}other:"
    )
    listeners = {
        node.url: await connect_ready(clients, node, external_token(node)) for node in (b, stranger_node)
    }
    speaker = await connect_ready(clients, a, external_token(a))
    assert (await speaker.call("game:shout", {"room": "broadcast:all", "text": "ours"}))["ok"]
    assert (await listeners[b.url].wait_for("game:news"))["text"] == "ours"
    stranger = listeners[stranger_node.url]
    own = await connect_ready(clients, stranger_node, external_token(stranger_node))
    assert (await own.call("game:shout", {"room": "broadcast:all", "text": "theirs"}))["ok"]
    await stranger.wait_for("game:news")
    assert [news["text"] for news in stranger.events["game:news"]] == ["theirs"]
    assert [news["text"] for news in listeners[b.url].events["game:news"]] == ["ours"]
