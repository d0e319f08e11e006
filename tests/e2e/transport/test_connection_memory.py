"""A closed connection's memory is released (issue 17, item 15).

Thousands of sockets connect (Engine.IO handshake, Socket.IO CONNECT with a token, `session:ready`)
and close; once the server has processed every departure, its RSS must be where it was, give or
take about 1 MiB per 1,000 cycles. A closed websocket used to stay reachable for a ping interval
(about 40 KiB each, with its protocol's compression state) and its memory was not given back.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.support.backends import Backend
from tests.support.clients import external_token
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

WARM_UP = 1000
CYCLES = 4000
IN_FLIGHT = 8
GROWTH_PER_1000 = 1024 * 1024


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    node = ServerProcess(
        backend.env(SOCKET_MAX_PER_USER=IN_FLIGHT * 4), tmp_path_factory.mktemp("memory") / "server.log"
    )
    yield node.start()
    node.stop()


async def connect_and_leave(url: str, token: str) -> None:
    async with websockets.connect(url) as ws:
        assert str(await ws.recv()).startswith("0{")
        await ws.send("40" + json.dumps({"token": token}))
        assert str(await ws.recv()).startswith("40{")
        assert str(await ws.recv()).startswith('42["session:ready"')


async def cycles(server: ServerProcess, token: str, count: int) -> None:
    """`count` sockets connect and leave, `IN_FLIGHT` at a time."""
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    left = iter(range(count))

    async def worker() -> None:
        for _ in left:
            await connect_and_leave(url, token)

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def all_departed(server: ServerProcess) -> None:
    """Wait until the server has processed every socket's departure (its gauge is back to 0)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        deadline = asyncio.get_running_loop().time() + 15
        while "parley_sockets_connected 0.0" not in (await http.get("/metrics")).text:
            assert asyncio.get_running_loop().time() < deadline, "sockets still counted as connected"


# 5,000 handshakes take about 80 s on a free core: longer than the suite's per-test limit once
# another worker shares the machine.
@pytest.mark.timeout(360)
async def test_closed_connections_give_their_memory_back(server: ServerProcess) -> None:
    token = external_token(server)
    await cycles(server, token, WARM_UP)
    await all_departed(server)
    settled = server.rss()

    await cycles(server, token, CYCLES)
    await all_departed(server)

    grown = server.rss() - settled
    logger.info(
        "RSS %.1f MiB after %d cycles, %+.2f MiB after %d more",
        settled / 2**20,
        WARM_UP,
        grown / 2**20,
        CYCLES,
    )
    allowed = GROWTH_PER_1000 * CYCLES // 1000
    assert grown < allowed, f"RSS grew {grown / 2**20:.1f} MiB over {CYCLES} cycles (after {WARM_UP})"
