"""Chat socket handlers on an in-process server: the query budget, and a leave that fails half way.

A real uvicorn server runs the app in this process, so a SQLAlchemy `before_cursor_execute` listener
sees every statement a handler sends through SQLAlchemy, and asyncpg's query logger (on each new
PostgreSQL connection) or a wrapper of aiosqlite's `execute_fetchall` the ones the chat writer sends
on the driver itself; a failure can be injected
into the service; real Socket.IO clients drive it. Transaction control (SQLite's `BEGIN IMMEDIATE`) is
not a query and is not counted.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import asyncpg
import httpx
import pytest
from sqlalchemy import event

from app.core.app_factory import ParleyApp
from app.modules.chat import sqlite_statements
from app.modules.chat.service import ChatService
from app.modules.chat.sqlite_statements import Prepared
from tests.support.backends import Backend
from tests.support.clients import Account, RecordingClient, register_and_login
from tests.support.live import auth, serve_in_process
from tests.support.live import connect as connect_to
from tests.support.live import make_group as group_of

BUDGET = 3


@dataclass
class StatementCounter:
    statements: list[str] = field(default_factory=list)

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.add(statement)

    def add(self, statement: str) -> None:
        query = statement.strip().upper()
        if query.rstrip(";") and not query.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.statements.append(statement)

    def on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        """Count what runs on asyncpg's connection itself too (not through SQLAlchemy's cursor), but the
        pool's pings (`;`), which SQLAlchemy's listener does not see either."""
        driver = dbapi_connection.driver_connection
        if isinstance(driver, asyncpg.Connection):
            driver.add_query_logger(lambda logged: self.add(logged.query))

    async def count(self, action: Any) -> tuple[Any, int]:
        self.statements.clear()
        result = await action
        return result, len(self.statements)


@dataclass
class LiveApp:
    parley: ParleyApp
    url: str
    http: httpx.AsyncClient
    counter: StatementCounter


@pytest.fixture
async def live(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LiveApp]:
    async with serve_in_process(backend.settings(RATE_LIMIT_ENABLED="false")) as (parley, url):
        counter = StatementCounter()
        fetch_all = aiosqlite.Connection.execute_fetchall

        async def counted(driver: aiosqlite.Connection, sql: str, parameters: Any = None) -> Any:
            counter.add(sql)
            return await fetch_all(driver, sql, parameters)

        write = sqlite_statements._write

        def write_counted(prepared: Prepared, database: sqlite3.Connection) -> Any:
            counter.add(prepared.seqs_sql)
            written = write(prepared, database)
            if written is not None:  # the seqs were given: the insert ran
                counter.add(prepared.insert_sql)
            return written

        # The chat writer's statements on aiosqlite's connection itself (SQLAlchemy never calls this),
        # and in its thread (a batch written at once).
        monkeypatch.setattr(aiosqlite.Connection, "execute_fetchall", counted)
        monkeypatch.setattr(sqlite_statements, "_write", write_counted)
        event.listen(parley.context.db.engine.sync_engine, "before_cursor_execute", counter)
        event.listen(parley.context.db.engine.sync_engine, "connect", counter.on_connect)
        async with httpx.AsyncClient(base_url=url) as http:
            yield LiveApp(parley, url, http, counter)
        event.remove(parley.context.db.engine.sync_engine, "before_cursor_execute", counter)
        event.remove(parley.context.db.engine.sync_engine, "connect", counter.on_connect)


async def make_group(live: LiveApp, owner: Account, *others: Account) -> str:
    return await group_of(live.http, owner, *others, title="budget")


async def connect(live: LiveApp, account: Account) -> RecordingClient:
    return await connect_to(live.url, account)


async def test_socket_handlers_stay_within_three_statements(live: LiveApp, backend: Backend) -> None:
    alice, bob = await register_and_login(live.http), await register_and_login(live.http)
    conversations = [await make_group(live, alice, bob) for _ in range(6)]
    cid = conversations[0]
    for other in conversations[1:]:
        for index in range(3):
            response = await live.http.post(
                f"/api/conversations/{other}/messages",
                json={"body": f"@{bob.username} {index}"},
                headers=auth(alice),
            )
            assert response.status_code == 201
    sock = await connect(live, alice)
    bob_sock = await connect(live, bob)
    clients = [sock, bob_sock]
    assert bob_sock.events["session:ready"][0]["unread"]["total"] == 15
    counts: dict[str, int] = {}
    try:
        send = {"conversation_id": cid, "body": "plain", "client_msg_id": "budget-1"}
        ack, counts["chat:send"] = await live.counter.count(sock.call("chat:send", send))
        assert ack["ok"] is True, ack
        ack, counts["chat:send (re-send)"] = await live.counter.count(sock.call("chat:send", send))
        assert ack["data"]["message"]["seq"] == 1
        mention = {"conversation_id": cid, "body": f"hi @{bob.username}", "client_msg_id": "budget-2"}
        ack, counts["chat:send (mention)"] = await live.counter.count(sock.call("chat:send", mention))
        assert ack["ok"] is True, ack
        await bob_sock.wait_for("notification:new")
        stranger = {"conversation_id": str(uuid.uuid4()), "body": "x", "client_msg_id": "budget-3"}
        ack, counts["chat:send (unknown conversation)"] = await live.counter.count(
            sock.call("chat:send", stranger)
        )
        assert ack["error"]["code"] == "NOT_FOUND"
        cursors = [{"conversation_id": c, "after_seq": 0} for c in conversations]
        ack, counts["chat:sync (6 conversations)"] = await live.counter.count(
            bob_sock.call("chat:sync", {"conversations": cursors, "limit": 2})
        )
        assert [len(c["messages"]) for c in ack["data"]["conversations"]] == [2, 2, 2, 2, 2, 2]
        ack, counts["conversation:focus"] = await live.counter.count(
            bob_sock.call("conversation:focus", {"conversation_id": cid})
        )
        assert ack["ok"] is True, ack
        ack, counts["chat:read"] = await live.counter.count(
            bob_sock.call("chat:read", {"conversation_id": cid, "last_read_seq": 2})
        )
        assert ack["data"]["unread"] == 0
        ack, counts["conversation:blur"] = await live.counter.count(
            bob_sock.call("conversation:blur", {"conversation_id": cid})
        )
        assert ack["ok"] is True
        ack, counts["conversation:mute"] = await live.counter.count(
            bob_sock.call("conversation:mute", {"conversation_id": conversations[2], "muted": True})
        )
        assert ack["data"] == {"conversation_id": conversations[2], "muted": True}, ack
        ack, counts["room:join group:"] = await live.counter.count(
            bob_sock.call("room:join", {"room": f"group:{conversations[1]}"})
        )
        assert ack["ok"] is True
        ack, counts["conversation:leave"] = await live.counter.count(
            bob_sock.call("conversation:leave", {"conversation_id": cid})
        )
        assert ack["ok"] is True, ack
        again, counts["connect (6 conversations, 5 unread)"] = await live.counter.count(connect(live, bob))
        clients.append(again)
        carol = await register_and_login(live.http)
        await make_group(live, alice, carol)
        clients.append(await connect(live, carol))  # online already, as bob is: no first-connect work
        fresh, counts["connect (1 conversation)"] = await live.counter.count(connect(live, carol))
        clients.append(fresh)
    finally:
        for client in clients:
            await client.close()
    logging.getLogger(__name__).info("statements per handler: %s", counts)
    # A batch is written at once: one statement on PostgreSQL, the seqs and the insert in one hand-over
    # on SQLite, which leaves a mention to the transaction. One that cannot be stored so (an unknown
    # conversation) is written again in the transaction, whose refusal a third statement explains.
    postgres = backend.name == "postgres"
    assert counts == {
        "chat:send": 1 if postgres else 2,
        "chat:send (re-send)": 1 if postgres else 2,
        "chat:send (mention)": 1 if postgres else 3,
        "chat:send (unknown conversation)": 3,
        "chat:sync (6 conversations)": 2,
        "conversation:focus": 1,
        "chat:read": 3,
        "conversation:blur": 0,
        "conversation:mute": 2,
        "room:join group:": 1,
        "conversation:leave": 3,
        "connect (6 conversations, 5 unread)": counts["connect (1 conversation)"],
        "connect (1 conversation)": counts["connect (1 conversation)"],
    }, counts
    assert max(count for name, count in counts.items() if not name.startswith("connect")) <= BUDGET


async def test_a_leave_that_fails_half_way_changes_nothing(
    live: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await register_and_login(live.http), await register_and_login(live.http)
    cid = await make_group(live, alice, bob)
    alice_sock, bob_sock = await connect(live, alice), await connect(live, bob)
    try:
        original = ChatService._insert_message

        async def failing(self: ChatService, values: dict[str, Any]) -> Any:
            if values["kind"] == "system":
                raise RuntimeError("injected failure after the participant row was deleted")
            return await original(self, values)

        monkeypatch.setattr(ChatService, "_insert_message", failing)
        ack = await bob_sock.call("conversation:leave", {"conversation_id": cid})
        assert ack["ok"] is False
        assert ack["error"]["code"] == "INTERNAL"
        monkeypatch.setattr(ChatService, "_insert_message", original)

        state = (await live.http.get(f"/api/conversations/{cid}", headers=auth(bob))).json()["data"]
        assert {p["user_id"] for p in state["participants"]} == {alice.user_id, bob.user_id}
        assert state["last_seq"] == 0, "no seq was taken"
        sent = await alice_sock.call(
            "chat:send", {"conversation_id": cid, "body": "still here", "client_msg_id": "a"}
        )
        assert sent["data"]["message"]["seq"] == 1
        assert (await bob_sock.wait_for("chat:message"))["message"]["seq"] == 1, "bob's socket kept its room"
        assert "conversation:participant_removed" not in alice_sock.events
    finally:
        for client in (alice_sock, bob_sock):
            await client.close()
