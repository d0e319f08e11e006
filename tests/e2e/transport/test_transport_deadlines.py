"""Every transport state has a deadline, and a socket is counted only while it is really connected.

A connection abandoned at any state (a request head or a websocket's opening handshake, a namespace
connect still being authenticated, an upgrade, a request body, a long-polling session that stops
polling, a websocket that drops) is closed within SOCKET_CONNECT_TIMEOUT or the ping timeout, and
afterwards the user is counted nowhere: not in `parley_sockets_connected`, not against
SOCKET_MAX_PER_USER, not as online.

A namespace connect is held in authentication for real: the test holds a lock in the database on
the users table, which provisioning the token's new user has to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import socketio
import websockets

from tests.support.backends import Backend
from tests.support.clients import RecordingClient, connect_ready, external_token
from tests.support.raw import raw
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

DEADLINE = 1.0
MAX_PER_USER = 2
ENV = {
    "SOCKET_CONNECT_TIMEOUT": DEADLINE,
    "SOCKET_PING_INTERVAL": 1,
    "SOCKET_PING_TIMEOUT": 1,
    "SOCKET_MAX_PER_USER": MAX_PER_USER,
    "PRESENCE_TTL": 2,
    "LOG_LEVEL": "INFO",
}


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    node = ServerProcess(backend.env(**ENV), tmp_path_factory.mktemp("deadlines") / "server.log")
    yield node.start()
    node.stop()


@contextlib.asynccontextmanager
async def users_table_locked(backend: Backend) -> AsyncIterator[None]:
    """Hold a lock that makes creating a user wait (reads go on) until the block ends."""
    if backend.name == "sqlite":
        connection = sqlite3.connect(backend.database_url.split("///", 1)[1], isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    pg = await asyncpg.connect(backend.database_url.replace("postgresql+asyncpg", "postgresql"))
    transaction = pg.transaction()
    await transaction.start()
    await pg.execute("LOCK TABLE users IN SHARE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await pg.close()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.05)


class User:
    """An external user the test can count: its sockets, its slots and its presence."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.id = str(uuid.uuid4())
        self.token = external_token(server, self.id)

    async def connected_sockets(self, http: httpx.AsyncClient) -> float:
        for line in (await http.get("/metrics")).text.splitlines():
            if line.startswith("parley_sockets_connected "):
                return float(line.split()[1])
        raise AssertionError("no parley_sockets_connected")

    async def status(self, http: httpx.AsyncClient) -> str:
        headers = {"Authorization": f"Bearer {self.token}"}
        answer = await http.get("/api/presence", params={"user_ids": self.id}, headers=headers)
        statuses = answer.json()["data"]["statuses"]
        return str(statuses[0]["status"]) if statuses else "unknown"

    async def counted_nowhere(self, http: httpx.AsyncClient, clients: Callable[[], RecordingClient]) -> None:
        """No socket counted, offline, and every one of the user's slots free."""

        async def gauge_empty() -> bool:
            return await self.connected_sockets(http) == 0

        async def offline() -> bool:
            return await self.status(http) == "offline"

        await eventually(gauge_empty)
        await eventually(offline)
        slots = [await connect_ready(clients, self.server, self.token) for _ in range(MAX_PER_USER)]
        over = clients()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await over.connect(self.server.url, self.token)
        assert over.connect_error["data"]["code"] == "RATE_LIMITED"
        for client in slots:
            await client.close()
        await eventually(gauge_empty)


async def polling_session(http: httpx.AsyncClient) -> dict[str, str]:
    opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    return {"EIO": "4", "transport": "polling", "sid": json.loads(opened.text[1:])["sid"]}


async def join_over_polling(http: httpx.AsyncClient, user: User) -> dict[str, str]:
    params = await polling_session(http)
    assert (
        await http.post("/socket.io/", params=params, content="40" + json.dumps({"token": user.token}))
    ).text == "OK"
    seen = ""
    while '"session:ready"' not in seen:
        seen += (await http.get("/socket.io/", params=params)).text
    return params


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_namespace_connect_stuck_in_authentication_is_closed_and_never_counted(
    server: ServerProcess, backend: Backend, http: httpx.AsyncClient, clients: Any, transport: str
) -> None:
    user = User(server)
    async with users_table_locked(backend):
        started = time.monotonic()
        if transport == "websocket":
            async with raw(server) as sock:
                await sock.send("40" + json.dumps({"token": user.token}))
                await sock.closed()
        else:
            params = await polling_session(http)
            connect = "40" + json.dumps({"token": user.token})
            assert (await http.post("/socket.io/", params=params, content=connect)).status_code == 200
            assert (await http.get("/socket.io/", params=params)).text.endswith("1"), "CLOSE"
        assert time.monotonic() - started < DEADLINE + 1.0
    await eventually(lambda: admitted_after_close(server))
    await user.counted_nowhere(http, clients)


async def admitted_after_close(server: ServerProcess) -> bool:
    return "admitted after its transport closed" in server.log()


@pytest.mark.parametrize("probe", [False, True], ids=["no probe", "probe without upgrade"])
async def test_an_upgrade_left_unfinished_is_closed_and_the_session_goes_on_polling(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any, probe: bool
) -> None:
    user = User(server)
    params = await join_over_polling(http, user)
    url = server.url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={params['sid']}"
    started = time.monotonic()
    async with websockets.connect(url) as ws:
        if probe:
            await ws.send("2probe")
            assert await ws.recv() == "3probe"
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), DEADLINE + 1.0)
    assert time.monotonic() - started < DEADLINE + 1.0
    join = "421" + json.dumps(["room:join", {"room": "broadcast:after-upgrade"}])
    assert (await http.post("/socket.io/", params=params, content=join)).status_code == 200
    seen = ""
    while "431[" not in seen:
        seen += (await http.get("/socket.io/", params=params)).text
    assert '"ok":true' in seen.split("431[", 1)[1]
    assert (await http.post("/socket.io/", params=params, content="1")).status_code == 200
    await user.counted_nowhere(http, clients)


async def test_a_request_body_that_never_arrives_is_answered_408_and_ends_the_session(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    user = User(server)
    params = await join_over_polling(http, user)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    query = "&".join(f"{key}={value}" for key, value in params.items())
    writer.write(
        f"POST /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
        "Content-Length: 100\r\n\r\n42".encode()
    )
    await writer.drain()
    started = time.monotonic()
    status_line = await asyncio.wait_for(reader.readline(), DEADLINE + 1.0)
    assert time.monotonic() - started < DEADLINE + 1.0
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    writer.close()
    await user.counted_nowhere(http, clients)


HEADS = {
    "nothing at all": "",
    "a long-polling handshake's head": "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: parley\r\n",
    "a websocket's opening handshake": (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: parley\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    ),
    "a second request on a kept-alive connection": (
        "GET /health HTTP/1.1\r\nHost: parley\r\n\r\nGET /health HTTP/1.1\r\nHost: par"
    ),
}


async def test_a_request_head_that_never_completes_is_answered_408_within_the_deadline(
    server: ServerProcess,
) -> None:
    answers = await asyncio.gather(*(unfinished_head(server, head) for head in HEADS.values()))
    for head, (answered, elapsed) in zip(HEADS, answers, strict=True):
        assert elapsed < DEADLINE + 1.0, head
        responses = answered.split(b"HTTP/1.1 ")[1:]
        assert responses[-1].startswith(b"408"), (head, answered)
        assert len(responses) == (2 if "second" in head else 1), head


async def unfinished_head(server: ServerProcess, head: str) -> tuple[bytes, float]:
    """What the server answers a connection that sends `head` and nothing more, and how soon it
    closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head.encode())
    started = time.monotonic()
    answered = await asyncio.wait_for(reader.read(), DEADLINE + 1.0)
    elapsed = time.monotonic() - started
    writer.close()
    return answered, elapsed


async def test_a_long_polling_client_that_stops_polling_is_closed_by_the_ping_timeout(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    user = User(server)
    await join_over_polling(http, user)
    await user.counted_nowhere(http, clients)


async def test_a_websocket_that_drops_is_uncounted(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    user = User(server)
    with contextlib.suppress(websockets.ConnectionClosed):
        async with raw(server, user.token) as sock:
            sock.ws.transport.abort()
    await user.counted_nowhere(http, clients)


async def test_a_websocket_that_stops_answering_pings_is_closed_at_the_ping_timeout(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    """The client keeps the connection but answers no Engine.IO PING: the session ends at the ping
    timeout and the server closes the websocket too, rather than holding it while the client stays."""
    user = User(server)
    async with raw(server, user.token) as sock:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:  # read, never answering `2`
                await sock.ws.recv()
        assert sock.ws.close_code == 1000
    await user.counted_nowhere(http, clients)


async def test_a_close_packet_over_websocket_ends_the_session(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    """Engine.IO's CLOSE (`1`) sent as a raw frame: the server closes the websocket at once (well
    before the ping timeout) and the disconnect handler runs, so the user is counted nowhere."""
    user = User(server)
    async with raw(server, user.token) as sock:
        assert await user.status(http) == "online"
        await sock.send("1")
        started = time.monotonic()
        await asyncio.wait_for(sock.ws.wait_closed(), DEADLINE)
        assert time.monotonic() - started < DEADLINE
    await user.counted_nowhere(http, clients)
