"""Per-room fan-out channels across real server processes, on one Redis and on a real three-master
Redis Cluster: chat and presence across nodes, a node without a member of a room reads none of its
messages, and a subscription connection that Redis drops is rebuilt with its channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.backends import REDIS_HOST, REDIS_PORT, Backend
from tests.support.clients import RecordingClient, connect_ready, external_token, register_and_login
from tests.support.proxy import TcpProxy
from tests.support.redis_servers import RedisCluster
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

GAME = "tests.support.game:create_asgi"
RESUMED = "channels subscribed again"
SHOUTS = 20


@pytest.fixture(scope="module")
def nodes(
    backend: Backend, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServerProcess]]:
    logs = tmp_path_factory.mktemp("channels")
    servers = [ServerProcess(backend.env(REDIS_URL=redis_url), logs / f"{name}.log", GAME) for name in "abc"]
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
async def http(nodes: list[ServerProcess]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=10) as client:
        yield client


def fanout_received(node: ServerProcess) -> float:
    """`parley_fanout_messages_received_total` of a node: the fan-out messages it read from Redis."""
    for line in httpx.get(f"{node.url}/metrics", timeout=5).text.splitlines():
        if line.startswith("parley_fanout_messages_received_total "):
            return float(line.split()[-1])
    raise AssertionError("no fan-out counter in /metrics")


async def test_chat_and_presence_reach_users_on_other_nodes(
    nodes: list[ServerProcess], http: httpx.AsyncClient, clients: Any
) -> None:
    a, b, _ = nodes
    alice, bob = await register_and_login(http), await register_and_login(http)
    alice_socket = await connect_ready(clients, a, alice.access_token)
    bob_socket = await connect_ready(clients, b, bob.access_token)
    created = await http.post(
        "/api/conversations",
        json={"kind": "direct", "participant_ids": [bob.user_id]},
        headers={"Authorization": f"Bearer {alice.access_token}"},
    )
    assert created.status_code == 201, created.text
    conversation = created.json()["data"]["id"]
    for sender, receiver in ((alice_socket, bob_socket), (bob_socket, alice_socket)):
        payload = {"conversation_id": conversation, "body": "over there", "client_msg_id": uuid.uuid4().hex}
        sent = await sender.call("chat:send", payload)
        assert sent["ok"], sent
        assert (await receiver.wait_for("chat:message"))["message"] == sent["data"]["message"]
    assert (await alice_socket.call("presence:subscribe", {"user_ids": [bob.user_id]}))["ok"]
    seen = len(alice_socket.events["user:status"])
    await bob_socket.close()
    for index in itertools.count(seen):
        status = await alice_socket.wait_for("user:status", index=index)
        if status["user_id"] == bob.user_id and status["status"] == "offline":
            break


async def test_a_node_without_a_member_of_the_room_reads_none_of_its_messages(
    nodes: list[ServerProcess], clients: Any
) -> None:
    a, b, c = nodes
    table = f"game:{uuid.uuid4().hex[:8]}-open"
    listener = await connect_ready(clients, a, external_token(a))
    speaker = await connect_ready(clients, b, external_token(b))
    await connect_ready(clients, c, external_token(c))  # node c holds sockets, none in the table
    assert (await listener.call("room:join", {"room": table}))["ok"]
    before = fanout_received(c)
    for index in range(SHOUTS):
        assert (await speaker.call("game:shout", {"room": table, "text": str(index)}))["ok"]
    assert (await listener.wait_for("game:news", index=SHOUTS - 1))["text"] == str(SHOUTS - 1)
    assert fanout_received(c) == before, "node c read messages of a room it has no member of"
    assert fanout_received(a) >= SHOUTS


async def shout_until_heard(speaker: RecordingClient, listener: RecordingClient, room: str) -> None:
    """Shout into `room` until the listener on another node hears it (its node may still be
    resubscribing); each round waits on the listener's event, not on the clock."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        heard = len(listener.events["game:news"])
        text = uuid.uuid4().hex
        assert (await speaker.call("game:shout", {"room": room, "text": text}))["ok"]
        with contextlib.suppress(TimeoutError):
            if (await listener.wait_for("game:news", timeout=0.5, index=heard))["text"] == text:
                return
        assert asyncio.get_running_loop().time() < deadline, "delivery did not resume"


async def joined_across(
    clients: Any, speaker_node: ServerProcess, listener_node: ServerProcess
) -> tuple[RecordingClient, RecordingClient, str]:
    """A listener in a room of its own on one node, heard from a speaker on the other."""
    table = f"game:{uuid.uuid4().hex[:8]}-open"
    speaker = await connect_ready(clients, speaker_node, external_token(speaker_node))
    listener = await connect_ready(clients, listener_node, external_token(listener_node))
    assert (await listener.call("room:join", {"room": table}))["ok"]
    await shout_until_heard(speaker, listener, table)
    return speaker, listener, table


@pytest.mark.parametrize("redis_url", ["redis-cluster"], indirect=True)
async def test_subscriptions_dropped_by_the_cluster_are_rebuilt(
    nodes: list[ServerProcess], clients: Any, request: pytest.FixtureRequest
) -> None:
    """Every master drops its pub/sub clients (what Redis does to a subscriber past its output
    buffer limit): each node logs it, subscribes its channels again, and delivery resumes. (The
    shared Redis of the other runs is not this test's to drop clients of: see the proxy test.)"""
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    a, b, _ = nodes
    speaker, listener, table = await joined_across(clients, a, b)
    cluster.kill_subscribers()
    await shout_until_heard(speaker, listener, table)
    assert RESUMED in b.log(), b.log()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    running = TcpProxy(REDIS_HOST, REDIS_PORT).start()
    yield running
    running.close()


async def test_a_cut_subscription_connection_is_rebuilt_with_its_channels(
    backend: Backend, proxy: TcpProxy, start_server: Callable[..., ServerProcess], clients: Any
) -> None:
    """One Redis behind a proxy: the cut resets every connection of both nodes; after it, the
    listener's node holds its room's channel again (joined before the cut) and says so in its log."""
    via_proxy = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
    a = start_server(backend, factory=GAME, **via_proxy)
    b = start_server(backend, factory=GAME, **via_proxy)
    speaker, listener, table = await joined_across(clients, a, b)
    proxy.cut()
    proxy.restore()
    await shout_until_heard(speaker, listener, table)
    assert RESUMED in b.log(), b.log()
    assert "Traceback" not in b.log()
