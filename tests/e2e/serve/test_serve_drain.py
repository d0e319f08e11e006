"""`parley serve` stops gracefully on SIGTERM: nothing in flight is lost, every client reconnects.

One node per backend. The database's write lock is held by the test (a real slow database), so a
`chat:send` is still running when SIGTERM arrives: the node stops accepting, answers new events
UNAVAILABLE, lets the running handler finish and ack once the lock is released, then ends each
transport (websocket and long-polling) without a namespace DISCONNECT, so python-socketio's default
reconnection brings both clients back once the node is started again, without a new token.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import socketio

from tests.support.backends import PG_HOST, PG_PORT, PG_USER, Backend
from tests.support.clients import external_token
from tests.support.crowd import Member, external_members, in_groups
from tests.support.server import ParleyServe, ServerProcess

pytestmark = pytest.mark.e2e

TIMEOUT = 15.0
STOP_WITHIN = 20.0
GAME = "tests.support.game:create_asgi"
ENV = {"SHUTDOWN_GRACE": "10", "RATE_LIMIT_CHAT": "1000/1", "RATE_LIMIT_DEFAULT": "1000/1"}


@pytest.fixture(scope="module")
def node(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParleyServe]:
    server = ParleyServe(backend.env(**ENV), tmp_path_factory.mktemp("drain") / "serve.log")
    try:
        yield server.start(timeout=60)
    finally:
        server.stop()


@pytest.fixture
async def http(node: ParleyServe) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        yield client


@contextlib.asynccontextmanager
async def write_lock(backend: Backend, conversation_id: str) -> AsyncIterator[None]:
    """Hold what `chat:send` must write: SQLite's write lock, or the conversation's row."""
    if backend.redis_url is None:
        path = backend.database_url.removeprefix("sqlite+aiosqlite:///")
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    database = backend.database_url.rsplit("/", 1)[1]
    pg = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
    try:
        transaction = pg.transaction()
        await transaction.start()
        await pg.execute("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE", conversation_id)
        try:
            yield
        finally:
            await transaction.rollback()
    finally:
        await pg.close()


class Reconnecting:
    """A python-socketio client with its default reconnection, recording why it was disconnected.

    A connection counts once its `session:ready` is in: the connect hooks are done with the database.
    """

    def __init__(self, member: Member) -> None:
        self.member = member
        self.sio = socketio.AsyncClient()
        self.reasons: list[str] = []
        self.connections = 0
        self.refusals: list[Any] = []
        """connect_error data: text while the node is down, `{code, message}` when it refuses."""
        self._changed = asyncio.Condition()
        self.sio.on("session:ready", self._on_ready)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("connect_error", self.refusals.append)

    async def _on_ready(self, _data: Any) -> None:
        async with self._changed:
            self.connections += 1
            self._changed.notify_all()

    async def _on_disconnect(self, reason: str = "") -> None:
        async with self._changed:
            self.reasons.append(str(reason))
            self._changed.notify_all()

    async def wait_for(self, connections: int, disconnects: int) -> None:
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.connections >= connections and len(self.reasons) >= disconnects
            )

    def send(self, client_msg_id: str) -> Any:
        payload = {
            "conversation_id": self.member.conversation_id,
            "body": client_msg_id,
            "client_msg_id": client_msg_id,
        }
        return self.sio.call("chat:send", payload, timeout=TIMEOUT)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_sigterm_lets_a_running_send_ack_refuses_new_ones_and_clients_come_back(
    backend: Backend, node: ParleyServe, http: httpx.AsyncClient
) -> None:
    members = await in_groups(http, await external_members(http, node.env["JWT_SECRET"], 2), 2)
    on_websocket, on_polling = Reconnecting(members[0]), Reconnecting(members[1])
    await on_websocket.sio.connect(node.url, auth={"token": members[0].token}, transports=["websocket"])
    await on_polling.sio.connect(node.url, auth={"token": members[1].token}, transports=["polling"])
    await asyncio.wait_for(on_websocket.wait_for(connections=1, disconnects=0), TIMEOUT)
    await asyncio.wait_for(on_polling.wait_for(connections=1, disconnects=0), TIMEOUT)

    async with write_lock(backend, members[0].conversation_id):
        held = asyncio.ensure_future(on_websocket.send("held"))
        # Events of one transport are read in order: once this ack is back, `held` is running.
        assert (await on_websocket.sio.call("room:join", {"room": "broadcast:all"}, timeout=TIMEOUT))["ok"]
        node.terminate()
        while not refuses_connections(node.port):
            await asyncio.sleep(0.05)
        refused = await on_polling.send("refused")
        assert not held.done(), "the held send finished before the lock was released"
    acked = await asyncio.wait_for(held, TIMEOUT)
    await on_websocket.wait_for(connections=1, disconnects=1)
    await on_polling.wait_for(connections=1, disconnects=1)
    assert await asyncio.to_thread(node.wait, STOP_WITHIN) == 0

    assert acked["ok"], acked
    assert refused["ok"] is False
    assert refused["error"]["code"] == "UNAVAILABLE"
    for client in (on_websocket, on_polling):
        assert client.reasons == [client.sio.reason.TRANSPORT_ERROR], (
            "a namespace DISCONNECT ends reconnection"
        )
    log = node.log()
    assert "drained: waited for 1 handlers" in log
    assert "parley stopped" in log

    started = asyncio.get_running_loop().time()
    await asyncio.to_thread(node.start, 60)
    try:
        await asyncio.wait_for(on_websocket.wait_for(connections=2, disconnects=1), TIMEOUT)
        await asyncio.wait_for(on_polling.wait_for(connections=2, disconnects=1), TIMEOUT)
        assert asyncio.get_running_loop().time() - started < TIMEOUT
        refused_by_the_server = [
            r for r in on_websocket.refusals + on_polling.refusals if isinstance(r, dict)
        ]
        assert refused_by_the_server == [], "a reconnect was refused (a new login would be needed)"
        again = await on_polling.send("after-restart")
        assert again["ok"], again
    finally:
        await asyncio.gather(on_websocket.sio.shutdown(), on_polling.sio.shutdown())
    page = await http.get(
        f"/api/conversations/{members[0].conversation_id}/messages",
        headers={"Authorization": f"Bearer {members[0].token}"},
    )
    bodies = [message["body"] for message in page.json()["data"]["items"]]
    assert bodies == ["held", "after-restart"], "the refused send must not be stored"
    assert acked["data"]["message"]["seq"] == 1


@pytest.fixture
def sqlite_backend(backend_factory: Callable[[str], Backend]) -> Backend:
    return backend_factory("sqlite")


async def test_a_handler_still_running_after_the_grace_is_cancelled_and_the_server_stops(
    sqlite_backend: Backend, start_server: Callable[..., ServerProcess]
) -> None:
    """Under a bare uvicorn the drain runs at the app's shutdown; SHUTDOWN_GRACE still bounds it.
    The held handler touches no storage, so one backend shows it."""
    server = start_server(sqlite_backend, factory=GAME, SHUTDOWN_GRACE="1", LOG_LEVEL="INFO")
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(server.url, auth={"token": external_token(server)}, transports=["websocket"])
    try:
        stuck = asyncio.ensure_future(client.call("game:hold", {"key": "never"}, timeout=TIMEOUT))
        while (await client.call("game:peek", {"key": "never"}, timeout=TIMEOUT))["data"]["running"] < 1:
            assert not stuck.done(), stuck.result()
        server.terminate()
        await asyncio.to_thread(server.wait, STOP_WITHIN)  # bare uvicorn ends by raising SIGTERM again
        assert not stuck.done(), "the held handler was cancelled: it never acks"
        stuck.cancel()
    finally:
        await client.shutdown()
    assert "drained: waited for 1 handlers, closed 0 transports, cancelled 1 handlers" in server.log()
