"""One bounded backlog per socket, acks included (SPEC §5 "Limits").

A client that never reads and keeps asking `chat:sync` for 200 messages of 4,000 characters (an ack
of about 0.8 MB each) must not make the server hold more than its backlog bound: it is cut off and
what waited for it is freed at once, on either transport, while the server keeps serving others.
The server's RSS is measured around the flood.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support.backends import Backend
from tests.support.clients import connect_ready, register_and_login
from tests.support.raw import stalled_socket
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

BACKLOG_BYTES = 2 * 1024 * 1024
MESSAGES = 200
REQUESTS = 150
"""Unbounded, the acks of this many requests would hold about 120 MB."""
HELD_AT_MOST = 40 * 1024 * 1024
"""RSS growth allowed around the flood: the bound, the ack being written, the transport's buffer,
and what building acks leaves in the allocator; a tenth of what the acks would hold unbounded."""
ENV = {
    "SOCKET_MAX_BACKLOG_BYTES": BACKLOG_BYTES,
    "RATE_LIMIT_DEFAULT": "100000/1",
    "RATE_LIMIT_CHAT": "100000/1",
}


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    node = ServerProcess(backend.env(**ENV), tmp_path_factory.mktemp("backlog") / "server.log")
    yield node.start()
    node.stop()


async def backlog_cut_offs(http: httpx.AsyncClient) -> float:
    metrics = (await http.get("/metrics")).text
    for line in metrics.splitlines():
        if line.startswith('parley_transport_faults_total{kind="backlog"}'):
            return float(line.split()[-1])
    return 0.0


async def full_conversation(server: ServerProcess, http: httpx.AsyncClient, clients: Any) -> tuple[str, str]:
    """A user's token and a conversation holding `MESSAGES` messages of 4,000 characters."""
    account = await register_and_login(http)
    created = await http.post(
        "/api/conversations",
        json={"kind": "group", "title": "long", "participant_ids": []},
        headers={"Authorization": f"Bearer {account.access_token}"},
    )
    conversation = created.json()["data"]["id"]
    writer = await connect_ready(clients, server, account.access_token)
    for seq in range(MESSAGES):
        body = f"{seq:04d}" + uuid.uuid4().hex * 124 + "x" * 28
        sent = await writer.call(
            "chat:send", {"conversation_id": conversation, "body": body, "client_msg_id": f"m{seq}"}
        )
        assert sent["ok"], sent
    return account.access_token, conversation


def sync_payload(conversation: str) -> dict[str, Any]:
    return {"conversations": [{"conversation_id": conversation, "after_seq": 0}], "limit": MESSAGES}


def sync_request(conversation: str, ack_id: int) -> str:
    return f"42{ack_id}" + json.dumps(["chat:sync", sync_payload(conversation)])


async def flood_over_websocket(server: ServerProcess, token: str, conversation: str) -> int:
    """Ask `chat:sync` without reading until the server drops the connection; the requests sent."""
    url = server.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url, sock=stalled_socket(server), compression=None, max_size=None) as ws:
        await ws.recv()
        await ws.send("40" + json.dumps({"token": token}))
        assert str(await ws.recv()).startswith("40")
        assert '"session:ready"' in str(await ws.recv())
        ws.transport.pause_reading()
        for ack_id in range(1, REQUESTS + 1):
            try:
                await ws.send(sync_request(conversation, ack_id))
                await asyncio.sleep(0.02)
            except websockets.ConnectionClosed:
                return ack_id
    return REQUESTS


async def flood_over_polling(server: ServerProcess, token: str, conversation: str) -> int:
    """POST `chat:sync` without ever polling until the session is gone; the requests accepted."""
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        opened = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        params = {"EIO": "4", "transport": "polling", "sid": json.loads(opened.text[1:])["sid"]}
        assert (
            await http.post("/socket.io/", params=params, content="40" + json.dumps({"token": token}))
        ).text == "OK"
        for ack_id in range(1, REQUESTS + 1):
            answer = await http.post("/socket.io/", params=params, content=sync_request(conversation, ack_id))
            if answer.status_code != 200:
                assert answer.status_code == 400, answer.text
                return ack_id - 1
            await asyncio.sleep(0.02)
    return REQUESTS


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_client_that_never_reads_its_acks_is_cut_off_at_the_bound(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any, transport: str
) -> None:
    token, conversation = await full_conversation(server, http, clients)
    reader = await connect_ready(clients, server, token)
    ack = await reader.call("chat:sync", sync_payload(conversation))
    assert len(ack["data"]["conversations"][0]["messages"]) == MESSAGES
    ack_bytes = len(json.dumps(ack))
    cut_offs = await backlog_cut_offs(http)
    before = server.rss()

    flood = flood_over_websocket if transport == "websocket" else flood_over_polling
    accepted = await flood(server, token, conversation)

    grown = server.rss() - before
    logger.info("%s: %d requests sent before the cut-off, RSS %+.1f MiB", transport, accepted, grown / 2**20)
    assert accepted < REQUESTS, "the client was cut off"
    assert accepted * ack_bytes > BACKLOG_BYTES, "and not before its backlog reached the bound"
    assert grown < HELD_AT_MOST, f"RSS grew {grown / 2**20:.1f} MiB for {accepted} unread acks"
    assert await backlog_cut_offs(http) == cut_offs + 1
    assert (await reader.call("chat:sync", sync_payload(conversation)))["ok"], "others are still served"
