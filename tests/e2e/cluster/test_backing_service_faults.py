"""Redis or PostgreSQL resets every connection, or goes away for a while.

The server reaches each service through a TCP proxy the test controls (`tests/support/proxy.py`).
After a reset the pooled connections are stale: new sockets and REST calls are served on fresh
connections, and nothing answers INTERNAL or 500. While a service is away, what needs it answers
UNAVAILABLE (503 over REST), which is no bug either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import socketio

from tests.support.backends import PG_HOST, PG_PORT, REDIS_HOST, REDIS_PORT, Backend
from tests.support.clients import Account, RecordingClient, connect_ready, register_and_login
from tests.support.proxy import TcpProxy
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

ROUNDS = 60
MAX_PER_USER = 3
SERVICES = {"redis": (REDIS_HOST, REDIS_PORT), "postgres": (PG_HOST, PG_PORT)}


@pytest.fixture
def proxies() -> Iterator[dict[str, TcpProxy]]:
    running = {name: TcpProxy(*target).start() for name, target in SERVICES.items()}
    yield running
    for proxy in running.values():
        proxy.close()


def through(backend: Backend, proxies: dict[str, TcpProxy]) -> dict[str, str]:
    """The backend's URLs, with Redis and PostgreSQL reached through their proxies."""
    database = backend.database_url.replace(
        f"@{PG_HOST}:{PG_PORT}/", f"@127.0.0.1:{proxies['postgres'].port}/"
    )
    assert database != backend.database_url
    return {
        "DATABASE_URL": database,
        "REDIS_URL": f"redis://127.0.0.1:{proxies['redis'].port}/0",
        "SOCKET_MAX_PER_USER": str(MAX_PER_USER),
    }


READS: dict[str, Callable[[str], tuple[str, dict[str, str]]]] = {
    "session": lambda user_id: ("/api/auth/me", {}),
    "database": lambda user_id: ("/api/conversations", {}),
    "both": lambda user_id: ("/api/presence", {"user_ids": user_id}),
}
NEEDS = {"redis": "both", "postgres": "database"}
"""A read that cannot be served without the service."""


async def rest_read(http: httpx.AsyncClient, account: Account, path: str) -> httpx.Response:
    """One REST read through `path`: the session (state backend), the database, or both."""
    url, params = READS[path](account.user_id)
    return await http.get(url, params=params, headers={"Authorization": f"Bearer {account.access_token}"})


async def socket_round(server: ServerProcess, token: str, clients: Callable[[], RecordingClient]) -> Any:
    """Connect and disconnect one socket; None once `session:ready` came, else the `connect_error`."""
    client = clients()
    try:
        await client.connect(server.url, token)
    except socketio.exceptions.ConnectionError:
        return client.connect_error
    await client.wait_for("session:ready")
    await client.close()
    return None


@pytest.mark.parametrize("service", ["redis", "postgres"])
async def test_a_reset_or_an_outage_answers_unavailable_and_never_internal(
    backend: Backend,
    proxies: dict[str, TcpProxy],
    start_server: Callable[..., ServerProcess],
    clients: Callable[[], RecordingClient],
    service: str,
) -> None:
    server = start_server(backend, **through(backend, proxies))
    paths = list(READS)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        account = await register_and_login(http)
        # Fill the pools: several connections to each service, all idle afterwards.
        await asyncio.gather(*(rest_read(http, account, path) for path in paths * 4))
        assert await socket_round(server, account.access_token, clients) is None

        proxies[service].cut()
        proxies[service].restore()
        refusals, statuses = [], []
        for round_ in range(ROUNDS):
            refusals.append(await socket_round(server, account.access_token, clients))
            statuses.append((await rest_read(http, account, paths[round_ % len(paths)])).status_code)
        assert [refusal for refusal in refusals if refusal is not None] == []
        assert set(statuses) == {200}, statuses

        leaving = await connect_ready(clients, server, account.access_token)
        proxies[service].cut()
        refused = clients()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(server.url, account.access_token)
        assert refused.connect_error["data"]["code"] == "UNAVAILABLE"
        away = await rest_read(http, account, NEEDS[service])
        assert away.status_code == 503, away.text
        assert away.json()["error"]["code"] == "UNAVAILABLE"
        await leaving.close()
        if service == "redis":
            await logged(server, "could not uncount a socket")

        proxies[service].restore()
        assert (await rest_read(http, account, NEEDS[service])).status_code == 200
        await every_slot_free(server, account.access_token, clients)
    assert "Traceback" not in server.log()


async def logged(server: ServerProcess, text: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while text not in server.log():
        assert asyncio.get_running_loop().time() < deadline, f"never logged: {text}"
        await asyncio.sleep(0.05)


async def every_slot_free(server: ServerProcess, token: str, clients: Callable[[], RecordingClient]) -> None:
    """The user can hold SOCKET_MAX_PER_USER sockets: a socket that left during the outage is
    uncounted once the state backend is back."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        held = []
        for _ in range(MAX_PER_USER):
            client = clients()
            try:
                await client.connect(server.url, token)
            except socketio.exceptions.ConnectionError:
                assert client.connect_error["data"]["code"] == "RATE_LIMITED"
                break
            await client.wait_for("session:ready")
            held.append(client)
        for client in held:
            await client.close()
        if len(held) == MAX_PER_USER:
            return
        assert asyncio.get_running_loop().time() < deadline, "a socket that left is still counted"
        await asyncio.sleep(0.2)
