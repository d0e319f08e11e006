"""Many users chatting in groups, for the deployment tests: external users (no password hashing),
group conversations over REST, and python-socketio clients with default options (polling, then the
upgrade to websocket)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

from tests.support.clients import sign_token

TOKEN_LIFETIME = dt.timedelta(hours=1)
PROVISION_AT_ONCE = 16


def expiry() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + TOKEN_LIFETIME


@dataclass(frozen=True)
class Member:
    user_id: str
    token: str
    conversation_id: str = ""
    expect: int = 0
    """chat:message events this member should receive: one per other member of its conversation."""


async def external_members(http: httpx.AsyncClient, secret: str, count: int) -> list[Member]:
    """`count` users of an external issuer, each provisioned by one `GET /api/auth/me`."""
    gate = asyncio.Semaphore(PROVISION_AT_ONCE)

    async def one() -> Member:
        user_id = str(uuid.uuid4())
        claims = {"sub": user_id, "preferred_username": f"u{user_id[:8]}", "exp": expiry()}
        token = sign_token(claims, secret)
        async with gate:
            me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        return Member(user_id, token)

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def in_groups(http: httpx.AsyncClient, members: list[Member], size: int) -> list[Member]:
    """The members, cut into group conversations of `size` in order, each knowing its group."""
    placed: list[Member] = []
    for start in range(0, len(members), size):
        group = members[start : start + size]
        owner, others = group[0], group[1:]
        response = await http.post(
            "/api/conversations",
            json={"kind": "group", "title": "crowd", "participant_ids": [m.user_id for m in others]},
            headers={"Authorization": f"Bearer {owner.token}"},
        )
        assert response.status_code == 201, response.text
        conversation_id = response.json()["data"]["id"]
        placed.extend(Member(m.user_id, m.token, conversation_id, len(group) - 1) for m in group)
    return placed


@dataclass
class PyMember:
    """A python-socketio client with default options that counts the chat messages it receives."""

    member: Member
    sio: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    received: int = 0
    heard_all: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.sio.on("session:ready", self._on_ready)
        self.sio.on("chat:message", self._on_message)

    async def _on_ready(self, _data: Any) -> None:
        self.ready.set()

    async def _on_message(self, _data: Any) -> None:
        self.received += 1
        if self.received >= self.member.expect:
            self.heard_all.set()

    async def connect(self, url: str, timeout: float) -> None:
        await self.sio.connect(url, auth={"token": self.member.token}, wait_timeout=timeout)
        await asyncio.wait_for(self.ready.wait(), timeout)

    async def send(self, timeout: float) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(
            "chat:send",
            {
                "conversation_id": self.member.conversation_id,
                "body": "hi",
                "client_msg_id": f"py-{self.sio.sid}",
            },
            timeout=timeout,
        )
        return ack

    @property
    def transport(self) -> str:
        return str(self.sio.eio.current_transport)

    @property
    def engine_sid(self) -> str:
        return str(self.sio.eio.sid)


@dataclass
class CrowdReport:
    """What a crowd of default clients saw: the JavaScript script's reports and the python side's."""

    js_ready: dict[str, Any]
    py_failures: list[str]
    py_transports: list[str]
    py_sids: list[str]
    js_done: dict[str, Any] = field(default_factory=dict)
    py_acks: list[dict[str, Any]] = field(default_factory=list)
    py_short: int = 0
    """chat:message events the python members missed."""

    @property
    def sids(self) -> list[str]:
        return [*self.js_ready["sids"], *self.py_sids]

    def summary(self, mode: str) -> str:
        ready = self.js_ready
        return (
            f"{mode}: JavaScript {ready['tried']} tried, {ready['connected']} connected, "
            f"{ready['upgraded']} upgraded; python {len(self.py_transports)} tried, "
            f"{len(self.py_failures)} failed"
        )

    def assert_all_connected_upgraded_and_chatted(self) -> None:
        tried = self.js_ready["tried"]
        assert self.js_ready["failures"] == []
        assert self.py_failures == []
        assert (self.js_ready["connected"], self.js_ready["upgraded"]) == (tried, tried)
        assert set(self.py_transports) == {"websocket"}
        assert self.js_done["failures"] == []
        assert self.js_done["missing"] == 0
        assert self.js_done["acked"] == tried
        assert all(ack["ok"] for ack in self.py_acks)
        assert self.py_short == 0


async def chat_crowd(
    url: str, http: httpx.AsyncClient, secret: str, js_count: int, py_count: int, group: int, timeout: float
) -> CrowdReport:
    """`js_count` socket.io-client and `py_count` python-socketio sockets with default options,
    mixed in groups of `group` (JavaScript members first): all connect and upgrade, then each sends
    one acked chat:send and hears every other member's."""
    from tests.support.js_clients import JsClient, JsClients

    members = await in_groups(http, await external_members(http, secret, js_count + py_count), group)
    js_per_group = group * js_count // (js_count + py_count)
    js_members = [m for index, m in enumerate(members) if index % group < js_per_group]
    py_members = [PyMember(m) for index, m in enumerate(members) if index % group >= js_per_group]
    assert (len(js_members), len(py_members)) == (js_count, py_count)
    js = await JsClients.start(
        url, [JsClient(m.token, m.conversation_id, m.expect) for m in js_members], timeout
    )
    try:
        outcomes = await asyncio.gather(
            *(p.connect(url, timeout) for p in py_members), return_exceptions=True
        )
        report = CrowdReport(
            js_ready=await js.ready(timeout * 2),
            py_failures=[repr(outcome) for outcome in outcomes if outcome is not None],
            py_transports=[p.transport for p in py_members],
            py_sids=[p.engine_sid for p in py_members if p.sio.connected],
        )
        if report.js_ready["failures"] or report.py_failures:
            return report
        exchange = asyncio.create_task(js.exchange(timeout))
        report.py_acks = list(await asyncio.gather(*(p.send(timeout) for p in py_members)))
        report.js_done = await exchange
        await asyncio.gather(
            *(asyncio.wait_for(p.heard_all.wait(), timeout) for p in py_members), return_exceptions=True
        )
        report.py_short = sum(max(0, p.member.expect - p.received) for p in py_members)
        return report
    finally:
        await js.close()
        await asyncio.gather(*(p.sio.shutdown() for p in py_members))
