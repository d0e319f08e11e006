"""Every socket limit, as a client sees it when it trips, and the server still serving afterwards.

One server per backend with small limits serves the module; each test uses its own users and
sockets (the rate buckets, the handler bound and the room count are per socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support.backends import Backend
from tests.support.clients import RecordingClient, connect_ready, external_token
from tests.support.raw import raw
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

GAME = "tests.support.game:create_asgi"
TRANSPORTS = ("websocket", "polling")
MAX_PAYLOAD = 4096
ALLOWED_ORIGIN = "https://app.example"
ENV = {
    "SOCKET_MAX_PAYLOAD_BYTES": MAX_PAYLOAD,
    "RATE_LIMIT_DEFAULT": "10/60",
    "SOCKET_MAX_CONCURRENT_HANDLERS": 1,
    "SOCKET_MAX_PER_USER": 2,
    "SOCKET_MAX_ROOMS": 5,
    "SOCKET_CORS_ORIGINS": ALLOWED_ORIGIN,
    "SOCKET_CONNECT_TIMEOUT": 1,
}


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    node = ServerProcess(backend.env(**ENV), tmp_path_factory.mktemp("limits") / "server.log", GAME)
    yield node.start()
    node.stop()


async def still_serving(client: RecordingClient) -> None:
    answer = await client.call("game:peek", {"key": "health"}, timeout=5)
    assert answer["ok"] is True, answer


# --- payload size -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_oversized_event_is_answered_payload_too_large_and_the_socket_goes_on(
    server: ServerProcess, clients: Any, transport: str
) -> None:
    client = await connect_ready(clients, server, external_token(server), transport)
    answer = await client.call("game:shout", {"room": "broadcast:all", "text": "x" * (MAX_PAYLOAD + 10)})
    assert answer["ok"] is False
    assert answer["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert answer["error"]["details"] == {"limit": MAX_PAYLOAD}
    await client.sio.emit("game:shout", {"room": "broadcast:all", "text": "y" * (MAX_PAYLOAD + 10)})
    exception = await client.wait_for("exception")
    assert (exception["event"], exception["code"]) == ("game:shout", "PAYLOAD_TOO_LARGE")
    await still_serving(client)


async def test_the_payload_limit_counts_bytes_not_characters(server: ServerProcess) -> None:
    """Korean text sent as raw UTF-8: fewer characters than the limit, but three bytes each."""
    async with raw(server, external_token(server)) as sock:
        table = f"game:{uuid.uuid4().hex[:8]}-open"
        too_big = json.dumps(
            ["game:shout", {"room": table, "text": "한" * (MAX_PAYLOAD // 2)}], ensure_ascii=False
        )
        assert len(too_big) < MAX_PAYLOAD < len(too_big.encode())
        await sock.send(f"421{too_big}")
        assert (await sock.ack(1))["error"]["code"] == "PAYLOAD_TOO_LARGE"
        fits = json.dumps(["game:shout", {"room": table, "text": "한" * 1000}], ensure_ascii=False)
        await sock.send(f"422{fits}")
        assert await sock.ack(2) == {"ok": True, "data": {"done": True}}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_far_too_large_upload_is_cut_off_without_harming_the_server(
    server: ServerProcess, clients: Any, transport: str
) -> None:
    bystander = await connect_ready(clients, server, external_token(server))
    offender = await connect_ready(clients, server, external_token(server), transport)
    await offender.sio.emit("game:shout", {"room": "broadcast:all", "text": "z" * (MAX_PAYLOAD * 50)})
    await asyncio.wait_for(offender.disconnected.wait(), 10)
    await still_serving(bystander)
    again = await connect_ready(clients, server, external_token(server), transport)
    await still_serving(again)


# --- rates and concurrency ----------------------------------------------------------------------


async def test_the_token_bucket_answers_rate_limited_per_socket(server: ServerProcess, clients: Any) -> None:
    token = external_token(server)
    busy, calm = await connect_ready(clients, server, token), await connect_ready(clients, server, token)
    answers = [await busy.call("room:leave", {"room": "broadcast:none"}) for _ in range(11)]
    assert [answer["ok"] for answer in answers] == [True] * 10 + [False]
    limited = answers[-1]["error"]
    assert limited["code"] == "RATE_LIMITED"
    assert limited["details"]["limit"] == "10/60"
    assert 0 < limited["details"]["retry_after"] <= 6
    await busy.sio.emit("room:leave", {"room": "broadcast:none"})
    assert (await busy.wait_for("exception"))["code"] == "RATE_LIMITED"
    assert (await calm.call("room:leave", {"room": "broadcast:none"}))["ok"], "the bucket is per socket"


async def test_handlers_of_one_socket_run_within_the_concurrency_bound(
    server: ServerProcess, clients: Any
) -> None:
    key = uuid.uuid4().hex
    worker = await connect_ready(clients, server, external_token(server))
    observer = await connect_ready(clients, server, external_token(server))
    holds: list[asyncio.Future[Any]] = []
    for _ in range(5):
        holds.append(asyncio.get_running_loop().create_future())
        await worker.sio.emit("game:hold", {"key": key}, callback=holds[-1].set_result)
    refused = await worker.call("game:hold", {"key": key})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "RATE_LIMITED"
    assert "in flight" in refused["error"]["message"]
    assert (await observer.call("game:peek", {"key": key}))["data"] == {"running": 1, "peak": 1}
    assert (await observer.call("game:release", {"key": key}))["ok"]
    assert [answer["ok"] for answer in await asyncio.gather(*holds)] == [True] * 5
    assert (await observer.call("game:peek", {"key": key}))["data"] == {"running": 0, "peak": 1}


# --- sockets per user, rooms per socket ---------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sockets_per_user_are_bounded_and_freed_on_disconnect(
    server: ServerProcess, clients: Any, transport: str
) -> None:
    token = external_token(server)
    first = await connect_ready(clients, server, token, transport)
    await connect_ready(clients, server, token, transport)
    for _ in range(2):
        refused = clients()
        with pytest.raises(Exception, match="failed to connect"):
            await refused.connect(server.url, token, transport)
        assert refused.connect_error["data"]["code"] == "RATE_LIMITED"
    await first.close()
    await connect_ready(clients, server, token, transport)


async def test_rooms_per_socket_are_bounded(server: ServerProcess, clients: Any) -> None:
    client = await connect_ready(clients, server, external_token(server))
    assert len(client.events["session:ready"][0]["rooms"]) == 2
    tables = [f"game:{uuid.uuid4().hex[:8]}-open" for _ in range(4)]
    assert [(await client.call("room:join", {"room": t}))["ok"] for t in tables] == [True, True, True, False]
    refused = (await client.call("room:join", {"room": tables[3]}))["error"]
    assert refused["code"] == "RATE_LIMITED"
    assert refused["details"] == {"limit": 5}
    assert (await client.call("room:join", {"room": tables[0]}))["ok"], "a room already joined is no new room"
    assert (await client.call("room:leave", {"room": tables[0]}))["ok"]
    assert (await client.call("room:join", {"room": tables[3]}))["ok"]


async def test_focusing_a_conversation_counts_against_the_rooms_per_socket_bound(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    token = external_token(server)
    headers = {"Authorization": f"Bearer {token}"}
    conversations = []
    for title in ("one", "two", "three"):
        body: dict[str, Any] = {"kind": "group", "title": title, "participant_ids": []}
        response = await http.post("/api/conversations", json=body, headers=headers)
        assert response.status_code == 201, response.text
        conversations.append(response.json()["data"]["id"])
    client = await connect_ready(clients, server, token)
    assert len(client.events["session:ready"][0]["rooms"]) == 5, "user, broadcast and three groups"
    refused = await client.call("conversation:focus", {"conversation_id": conversations[0]})
    assert refused["error"]["code"] == "RATE_LIMITED"
    assert refused["error"]["details"] == {"limit": 5}
    assert (await client.call("room:leave", {"room": "broadcast:all"}))["ok"]
    assert (await client.call("conversation:focus", {"conversation_id": conversations[0]}))["ok"]


# --- origins and the namespace handshake --------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": ALLOWED_ORIGIN}, True),
        ({}, True),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example"}, False),
        (
            {
                "Origin": "https://evil.example",
                "X-Forwarded-Host": "app.example",
                "Forwarded": "host=app.example",
            },
            False,
        ),
        ({"Origin": "null"}, False),
    ],
)
async def test_only_allowlisted_origins_may_open_a_transport(
    server: ServerProcess, headers: dict[str, str], allowed: bool
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        polling = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"}, headers=headers)
    assert (polling.status_code == 200) is allowed, polling.text
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    extra = {name: value for name, value in headers.items() if name != "Origin"}
    origin = headers.get("Origin")
    try:
        async with websockets.connect(ws_url, origin=origin, additional_headers=extra) as ws:  # type: ignore[arg-type]
            opened = await asyncio.wait_for(ws.recv(), 5)
    except websockets.InvalidStatus:
        opened = None
    assert (opened is not None) is allowed
    if opened is not None:
        assert str(opened).startswith("0{")


async def test_a_transport_that_never_joins_the_namespace_is_closed(server: ServerProcess) -> None:
    ws_url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(ws_url) as ws:
        opened = json.loads(str(await ws.recv())[1:])
        assert opened["sid"]
        with contextlib.suppress(websockets.ConnectionClosed):
            frame = await asyncio.wait_for(ws.recv(), 5)
            assert frame == "1", "Engine.IO CLOSE"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        handshake = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        sid = json.loads(handshake.text[1:])["sid"]
        poll = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid})
        assert poll.text.endswith("1"), "a CLOSE packet ends the session"
        after = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling", "sid": sid})
        assert after.status_code == 400


async def test_limits_are_announced_in_session_ready(server: ServerProcess, clients: Any) -> None:
    client = await connect_ready(clients, server, external_token(server))
    limits = client.events["session:ready"][0]["limits"]
    assert limits["max_payload_bytes"] == MAX_PAYLOAD
    assert limits["max_rooms"] == 5
    assert limits["rate_limits"]["default"] == {"capacity": 10, "per_seconds": 60}
