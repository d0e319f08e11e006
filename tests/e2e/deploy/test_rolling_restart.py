"""A rolling restart behind nginx loses nothing: restart node a, then node b, while clients send.

The session's deployment (`tests/e2e/conftest.py`): node a runs one process, node b `--workers 2`,
on PostgreSQL + Redis, behind `deploy/nginx.conf`; this module runs after the nginx one.
Logged-in users (login sessions, not external tokens) send acked `chat:send` steadily through nginx
with python-socketio's default reconnection. Each node is stopped with SIGTERM (it drains: running
handlers ack, then transports close without a namespace DISCONNECT) and started again. Every acked
message must be stored once with the seq its ack named, every client must be connected again within
a few seconds, and no client is refused or has to log in again.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import socketio

from tests.support.clients import Account, register_and_login
from tests.support.crowd import Member, in_groups
from tests.support.nginx import Nginx, from_address
from tests.support.server import ParleyServe

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

SENDERS = 12
GROUP = 4
PACE = 0.1
"""Seconds between a sender's acked message and its next one."""
ACK_TIMEOUT = 5.0
RECONNECT_WITHIN = 6.0
PROGRESS = 3
"""Messages every sender gets acked between two restarts."""
SEND_FAILURES = (socketio.exceptions.TimeoutError, socketio.exceptions.BadNamespaceError)


@pytest.fixture
async def http(nginx: Nginx) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nginx.url, timeout=10) as client:
        yield client


class SteadySender:
    """Sends acked chat:send one after another; an unacknowledged message is sent again, with the
    same client_msg_id, once the client has reconnected (by itself, with its first token)."""

    def __init__(self, name: str, account: Account, conversation_id: str) -> None:
        self.name = name
        self.account = account
        self.conversation_id = conversation_id
        self.sio = socketio.AsyncClient(reconnection=True)
        self.acked: dict[str, int] = {}
        self.refused_unavailable = 0
        self.resent = 0
        """Sends repeated because no ack came (the connection ended first, or ACK_TIMEOUT passed)."""
        self.connect_errors: list[Any] = []
        self.reconnect_seconds: list[float] = []
        self.connections = 0
        self._changed = asyncio.Condition()
        """Notified on every connection and every acked message."""
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnected_at: float | None = None
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("connect_error", self._on_connect_error)

    async def _on_connect(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._disconnected_at is not None:
            self.reconnect_seconds.append(now - self._disconnected_at)
            self._disconnected_at = None
        self.connections += 1
        self._disconnected.clear()
        self._connected.set()
        async with self._changed:
            self._changed.notify_all()

    async def _on_disconnect(self, *_reason: Any) -> None:
        self._disconnected_at = asyncio.get_running_loop().time()
        self._connected.clear()
        self._disconnected.set()

    async def _on_connect_error(self, data: Any) -> None:
        self.connect_errors.append(data)

    async def connect(self, url: str) -> None:
        await self.sio.connect(url, auth={"token": self.account.access_token}, wait_timeout=10)

    async def run(self, stop: asyncio.Event) -> None:
        number = 0
        while not stop.is_set():
            number += 1
            await self._send_until_acked(f"{self.name}-{number}")
            await asyncio.sleep(PACE)

    async def _send_until_acked(self, client_msg_id: str) -> None:
        payload = {
            "conversation_id": self.conversation_id,
            "body": client_msg_id,
            "client_msg_id": client_msg_id,
        }
        while True:
            await self._connected.wait()
            connection = self.connections
            ack = await self._call_unless_cut_off(payload)
            if ack is None:
                self.resent += 1
                continue
            if ack["ok"]:
                self.acked[client_msg_id] = ack["data"]["message"]["seq"]
                async with self._changed:
                    self._changed.notify_all()
                return
            assert ack["error"]["code"] == "UNAVAILABLE", ack
            self.refused_unavailable += 1
            await self._connection_after(connection)  # the node is stopping: send on the next one

    async def _call_unless_cut_off(self, payload: dict[str, str]) -> Any:
        """The ack, or None when the connection ends first or no ack comes within ACK_TIMEOUT
        (python-socketio leaves a call waiting for its timeout when the connection ends)."""
        call = asyncio.ensure_future(self.sio.call("chat:send", payload, timeout=ACK_TIMEOUT))
        cut_off = asyncio.ensure_future(self._disconnected.wait())
        await asyncio.wait({call, cut_off}, return_when=asyncio.FIRST_COMPLETED)
        cut_off.cancel()
        if not call.done():
            call.cancel()
            return None
        try:
            return call.result()
        except SEND_FAILURES:
            return None

    async def _connection_after(self, seen: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.connections > seen)

    async def progressed(self, count: int) -> None:
        target = len(self.acked) + count
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.acked) >= target)


async def stored_messages(
    http: httpx.AsyncClient, reader: Account, conversation_id: str
) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        page = await http.get(
            f"/api/conversations/{conversation_id}/messages",
            params={"after_seq": messages[-1]["seq"] if messages else 0, "limit": 200},
            headers={"Authorization": f"Bearer {reader.access_token}"},
        )
        assert page.status_code == 200, page.text
        messages.extend(page.json()["data"]["items"])
        if not page.json()["data"]["has_more"]:
            return messages


async def restart(node: ParleyServe) -> None:
    node.terminate()
    assert await asyncio.to_thread(node.wait, 30) == 0, node.log()[-2000:]
    await asyncio.to_thread(node.start, 90)


async def served_by(nginx: Nginx, name: str) -> None:
    """Until nginx hands a new session to node `name` again (it skips a failed node for a while)."""
    async with httpx.AsyncClient(base_url=nginx.url, timeout=10) as fresh:
        while True:
            handshake = await fresh.get(
                "/socket.io/?EIO=4&transport=polling", headers={"Connection": "close"}
            )
            if handshake.status_code == 200 and f'"sid":"{name}.' in handshake.text:
                return
            await asyncio.sleep(0.2)


async def test_a_rolling_restart_loses_no_acked_message_and_everyone_reconnects(
    nginx: Nginx, deployed_nodes: list[ParleyServe], http: httpx.AsyncClient
) -> None:
    accounts = {}
    for index in range(SENDERS):  # an address each: logins are limited per client address
        async with from_address(f"127.0.1.{index + 1}", nginx.url) as own:
            account = await register_and_login(own)
        accounts[account.user_id] = account
    placed = await in_groups(http, [Member(a.user_id, a.access_token) for a in accounts.values()], GROUP)
    senders = [SteadySender(f"s{i}", accounts[m.user_id], m.conversation_id) for i, m in enumerate(placed)]
    await asyncio.gather(*(sender.connect(nginx.url) for sender in senders))
    assert {sender.sio.eio.sid.split(".")[0] for sender in senders} == {"a", "b"}

    stop = asyncio.Event()
    running = [asyncio.create_task(sender.run(stop)) for sender in senders]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.progressed(PROGRESS) for s in senders)), 30)
        for node, name in zip(deployed_nodes, ("a", "b"), strict=True):
            await restart(node)
            await asyncio.wait_for(served_by(nginx, name), 30)
            await asyncio.wait_for(asyncio.gather(*(s.progressed(PROGRESS) for s in senders)), 30)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 30)
    finally:
        stop.set()
        for task in running:
            task.cancel()
        await asyncio.gather(*(sender.sio.shutdown() for sender in senders))

    missing = 0
    readers = {sender.conversation_id: sender.account for sender in senders}
    for conversation_id, reader in readers.items():
        stored = await stored_messages(http, reader, conversation_id)
        assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1)), "seqs have a gap"
        by_id = {m["client_msg_id"]: m["seq"] for m in stored}
        assert len(by_id) == len(stored), "a message was stored twice"
        for sender in (s for s in senders if s.conversation_id == conversation_id):
            missing += sum(1 for msg_id, seq in sender.acked.items() if by_id.get(msg_id) != seq)
    times = sorted(t for sender in senders for t in sender.reconnect_seconds)
    logger.info(
        "rolling restart: %d acked messages, %d missing, %d UNAVAILABLE acks, %d sent again; "
        "%d reconnects in %.2f / %.2f / %.2f s (min / median / max)",
        sum(len(s.acked) for s in senders),
        missing,
        sum(s.refused_unavailable for s in senders),
        sum(s.resent for s in senders),
        len(times),
        times[0],
        statistics.median(times),
        times[-1],
    )
    assert missing == 0
    assert [s.connect_errors for s in senders] == [[]] * SENDERS, "a reconnect was refused"
    assert all(s.reconnect_seconds for s in senders), "every client's node was restarted"
    assert times[-1] < RECONNECT_WITHIN
