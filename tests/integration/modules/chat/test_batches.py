"""Group commit of chat messages on an in-process server: batches formed on purpose, faults for real.

The writer is held (`MessageWriter.held`) while real Socket.IO and REST clients hand it their
messages, so that they are written as one batch once it is left; `MessageWriter.checkpoint` stops a
batch's transaction half way (its seqs taken, its messages not yet inserted) for a database fault to
strike there. PostgreSQL's one statement has no half way: a fault strikes it while it waits for a
conversation's row that the test holds, or as its answer comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.app_factory import ParleyApp
from app.modules.chat.writer import MessageWriter
from tests.support.backends import PG_HOST, PG_PORT, PG_USER, Backend
from tests.support.clients import Account, RecordingClient, register_and_login
from tests.support.live import auth, connect, make_group, serve_in_process
from tests.support.proxy import TcpProxy


@dataclass
class Node:
    parley: ParleyApp
    url: str
    http: httpx.AsyncClient

    @property
    def writer(self) -> MessageWriter:
        return self.parley.context.get(MessageWriter)

    def ways(self) -> dict[str, float]:
        """Batches written so far, by way (at once, or a transaction)."""
        registry = self.parley.context.metrics.registry
        return {
            way: registry.get_sample_value("parley_chat_write_batches_total", {"way": way}) or 0.0
            for way in ("at_once", "transaction")
        }

    def batches(self) -> tuple[float, float]:
        """(batches written, messages in them) so far, from the writer's histogram."""
        registry = self.parley.context.metrics.registry
        count = registry.get_sample_value("parley_chat_write_batch_size_count") or 0.0
        total = registry.get_sample_value("parley_chat_write_batch_size_sum") or 0.0
        return count, total


@contextlib.asynccontextmanager
async def serving(backend: Backend, **env: Any) -> AsyncIterator[Node]:
    async with serve_in_process(backend.settings(RATE_LIMIT_ENABLED="false", **env)) as (parley, url):
        async with httpx.AsyncClient(base_url=url, timeout=15) as http:
            yield Node(parley, url, http)


@pytest.fixture
async def node(backend: Backend) -> AsyncIterator[Node]:
    async with serving(backend) as started:
        yield started


def send(conversation_id: str, body: str, client_msg_id: str) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "body": body, "client_msg_id": client_msg_id}


def post_message(
    node: Node, account: Account, cid: str, body: str, client_msg_id: str
) -> Awaitable[httpx.Response]:
    """A message sent over REST (`POST /conversations/{id}/messages`), through the same writer."""
    return node.http.post(
        f"/api/conversations/{cid}/messages",
        json={"body": body, "client_msg_id": client_msg_id},
        headers=auth(account),
    )


async def history(node: Node, account: Account, conversation_id: str) -> list[dict[str, Any]]:
    response = await node.http.get(
        f"/api/conversations/{conversation_id}/messages", params={"limit": 200}, headers=auth(account)
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["data"]["items"]
    return items


class Queue:
    """Hands messages to a held writer one after another, in a known order."""

    def __init__(self, writer: MessageWriter) -> None:
        self.writer = writer
        self.calls: list[asyncio.Task[Any]] = []

    async def add(self, call: Awaitable[Any]) -> asyncio.Task[Any]:
        async def run() -> Any:
            return await call

        task = asyncio.create_task(run())
        self.calls.append(task)
        await self.writer.queued_at_least(len(self.calls))
        return task


async def seqs_heard(client: RecordingClient, wanted: set[int]) -> list[int]:
    """The seqs of the `chat:message` events `client` got, once those of `wanted` have all come."""
    index = 0
    heard: list[int] = []
    while not wanted <= set(heard):
        heard.append((await client.wait_for("chat:message", index=index))["message"]["seq"])
        index += 1
    return heard


async def test_a_mixed_batch_answers_each_message_on_its_own(node: Node, backend: Backend) -> None:
    alice, bob, carol = [await register_and_login(node.http) for _ in range(3)]
    cid = await make_group(node.http, alice, bob, carol)
    batches_before = node.batches()
    earlier = await post_message(node, alice, cid, "earlier", "e-1")
    assert earlier.status_code == 201, earlier.text
    assert node.batches() == (batches_before[0] + 1, batches_before[1] + 1), "a lone message goes alone"
    alice_sock, bob_sock, carol_sock = [await connect(node.url, account) for account in (alice, bob, carol)]
    try:
        queue = Queue(node.writer)
        async with node.writer.held():
            good = await queue.add(alice_sock.call("chat:send", send(cid, f"hi @{bob.username}", "g-1")))
            resent = await queue.add(alice_sock.call("chat:send", send(cid, "earlier again", "e-1")))
            first = await queue.add(bob_sock.call("chat:send", send(cid, "twice", "b-1")))
            again = await queue.add(bob_sock.call("chat:send", send(cid, "twice", "b-1")))
            removed = await queue.add(carol_sock.call("chat:send", send(cid, "too late", "c-1")))
            over_rest = await queue.add(post_message(node, alice, cid, "over REST", "r-1"))
            async with serving(backend) as other_node:  # carol is removed on another node meanwhile
                kicked = await other_node.http.delete(
                    f"/api/conversations/{cid}/participants/{carol.user_id}", headers=auth(alice)
                )
            assert kicked.status_code == 200, kicked.text
            batches_held = node.batches()
        answers = await asyncio.gather(good, resent, first, again, removed)
        rest_answer = await over_rest
        mention = await bob_sock.wait_for("notification:new")
        heard = await seqs_heard(alice_sock, {4, 5})
    finally:
        for client in (alice_sock, bob_sock, carol_sock):
            await client.close()

    good_ack, resent_ack, first_ack, again_ack, removed_ack = answers
    assert [ack["ok"] for ack in answers] == [True, True, True, True, False], answers
    assert removed_ack["error"]["code"] == "FORBIDDEN", removed_ack
    assert resent_ack["data"]["message"]["seq"] == 1
    assert resent_ack["data"]["message"]["body"] == "earlier"
    assert first_ack["data"]["message"] == again_ack["data"]["message"], (
        "a re-send in the batch gets the same message"
    )
    assert rest_answer.status_code == 201, rest_answer.text
    # seq 2 is carol's removal, committed while the batch waited; the batch follows it without a gap.
    seqs = {
        "good": good_ack["data"]["message"]["seq"],
        "bob": first_ack["data"]["message"]["seq"],
        "rest": rest_answer.json()["data"]["seq"],
    }
    assert seqs == {"good": 3, "bob": 4, "rest": 5}, seqs
    stored = await history(node, alice, cid)
    assert [(m["seq"], m["kind"], m["body"]) for m in stored] == [
        (1, "text", "earlier"),
        (2, "system", stored[1]["body"]),
        (3, "text", f"hi @{bob.username}"),
        (4, "text", "twice"),
        (5, "text", "over REST"),
    ]
    count, total = node.batches()
    assert (count - batches_held[0], total - batches_held[1]) == (1, 6), "the six messages made one batch"
    assert mention["data"]["seq"] == 3
    assert set(heard) <= {2, 4, 5}, "bob's message and the REST send (and the removal, heard across nodes)"
    assert heard.count(4) == 1, "bob's message, sent twice, is broadcast once"
    state = (await node.http.get(f"/api/conversations/{cid}", headers=auth(bob))).json()["data"]
    assert {p["user_id"]: p["last_read_seq"] for p in state["participants"]}[bob.user_id] == 4, (
        "a sender has read up to the message the batch stored for them"
    )


def written_by(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {way: after[way] - before[way] for way in after}


@dataclass
class MixedBatch:
    """What `mixed_batch` sent and got: alice's and bob's acks (fresh, re-sent, bob's first, its repeat),
    bob's REST answer, the seqs alice heard, bob's mention (if any) and the batches written, by way."""

    alice: Account
    bob: Account
    cid: str
    acks: list[dict[str, Any]]
    rest_answer: httpx.Response
    heard: list[int]
    mention: dict[str, Any] | None
    ways: dict[str, float]


async def mixed_batch(node: Node, fresh_body: Callable[[Account], str]) -> MixedBatch:
    """One held batch in a group of alice and bob: a new message of alice's (`fresh_body(bob)`), a re-send
    of one she stored earlier, a message of bob's sent twice, and one of his over REST."""
    alice, bob = await register_and_login(node.http), await register_and_login(node.http)
    cid = await make_group(node.http, alice, bob)
    earlier = await post_message(node, alice, cid, "earlier", "e-1")
    assert earlier.status_code == 201, earlier.text
    alice_sock, bob_sock = [await connect(node.url, account) for account in (alice, bob)]
    ways_before = node.ways()
    try:
        queue = Queue(node.writer)
        async with node.writer.held():
            fresh = await queue.add(alice_sock.call("chat:send", send(cid, fresh_body(bob), "a-1")))
            resent = await queue.add(alice_sock.call("chat:send", send(cid, "earlier again", "e-1")))
            first = await queue.add(bob_sock.call("chat:send", send(cid, "twice", "b-1")))
            again = await queue.add(bob_sock.call("chat:send", send(cid, "twice", "b-1")))
            over_rest = await queue.add(post_message(node, bob, cid, "over REST", "r-1"))
        acks = await asyncio.gather(fresh, resent, first, again)
        rest_answer = await over_rest
        heard = await seqs_heard(alice_sock, {3, 4})
        mentioned = "@" in fresh_body(bob)
        mention = await bob_sock.wait_for("notification:new") if mentioned else None
    finally:
        for client in (alice_sock, bob_sock):
            await client.close()
    ways = written_by(ways_before, node.ways())
    return MixedBatch(alice, bob, cid, list(acks), rest_answer, heard, mention, ways)


@pytest.mark.parametrize("mentioned", [False, True], ids=["plain", "mention"])
async def test_a_batch_of_text_messages_is_written_at_once(
    node: Node, backend: Backend, mentioned: bool
) -> None:
    """New messages, a re-send of one stored earlier, a re-send inside the batch and a REST send, none
    refused: one statement settles them all on PostgreSQL, and one hand-over to aiosqlite's thread on
    SQLite, which leaves a batch with a mention (of bob, by alice's new message) to the transaction."""
    batch = await mixed_batch(node, lambda bob: f"fresh @{bob.username}" if mentioned else "fresh")
    alice, bob, cid, acks = batch.alice, batch.bob, batch.cid, batch.acks
    assert [ack["ok"] for ack in acks] == [True] * 4, acks
    fresh_ack, resent_ack, first_ack, again_ack = acks
    assert resent_ack["data"]["message"]["seq"] == 1
    assert resent_ack["data"]["message"]["body"] == "earlier", "a re-send gets the stored message"
    assert first_ack["data"]["message"] == again_ack["data"]["message"]
    assert batch.rest_answer.status_code == 201, batch.rest_answer.text
    assert (fresh_ack["data"]["message"]["seq"], first_ack["data"]["message"]["seq"]) == (2, 3)
    assert batch.rest_answer.json()["data"]["seq"] == 4
    assert sorted(batch.heard) == [3, 4], "alice hears bob's two messages once each, not her own"
    stored = await history(node, alice, cid)
    assert [(m["seq"], m["body"]) for m in stored] == [
        (1, "earlier"),
        (2, fresh_ack["data"]["message"]["body"]),
        (3, "twice"),
        (4, "over REST"),
    ]
    state = (await node.http.get(f"/api/conversations/{cid}", headers=auth(bob))).json()["data"]
    assert {p["user_id"]: p["last_read_seq"] for p in state["participants"]} == {
        alice.user_id: 2,
        bob.user_id: 4,
    }, "each sender has read up to their last message"
    at_once = backend.name == "postgres" or not mentioned
    assert batch.ways == {"at_once": int(at_once), "transaction": int(not at_once)}
    if not mentioned:
        assert batch.mention is None
        return
    assert batch.mention is not None
    assert batch.mention["data"] == {
        "conversation_id": cid,
        "message_id": fresh_ack["data"]["message"]["id"],
        "seq": 2,
    }
    assert batch.mention["title"].endswith(" mentioned you"), batch.mention
    listed = await node.http.get("/api/notifications", headers=auth(bob))
    assert [item["data"] for item in listed.json()["data"]["items"]] == [batch.mention["data"]], "as stored"


async def test_a_refusal_sends_the_batch_the_transactional_way(node: Node, backend: Backend) -> None:
    """A sender removed before the batch: the one statement stores nothing, the transaction refuses that
    sender's message alone and stores the others without a gap."""
    alice, bob, carol = [await register_and_login(node.http) for _ in range(3)]
    cid = await make_group(node.http, alice, bob, carol)
    alice_sock, carol_sock = [await connect(node.url, account) for account in (alice, carol)]
    try:
        queue = Queue(node.writer)
        async with node.writer.held():
            before = await queue.add(alice_sock.call("chat:send", send(cid, "before", "a-1")))
            refused = await queue.add(carol_sock.call("chat:send", send(cid, "too late", "c-1")))
            after = await queue.add(alice_sock.call("chat:send", send(cid, "after", "a-2")))
            async with serving(backend) as other_node:
                kicked = await other_node.http.delete(
                    f"/api/conversations/{cid}/participants/{carol.user_id}", headers=auth(alice)
                )
            assert kicked.status_code == 200, kicked.text
            ways_held = node.ways()
        before_ack, refused_ack, after_ack = await asyncio.gather(before, refused, after)
    finally:
        for client in (alice_sock, carol_sock):
            await client.close()
    assert refused_ack["ok"] is False, refused_ack
    assert refused_ack["error"]["code"] == "FORBIDDEN", refused_ack
    assert (before_ack["data"]["message"]["seq"], after_ack["data"]["message"]["seq"]) == (2, 3)
    stored = await history(node, alice, cid)
    assert [(m["seq"], m["kind"]) for m in stored] == [(1, "system"), (2, "text"), (3, "text")], stored
    assert written_by(ways_held, node.ways()) == {"at_once": 0, "transaction": 1}


async def test_a_leave_takes_its_place_among_the_messages_around_it(node: Node) -> None:
    alice, bob = await register_and_login(node.http), await register_and_login(node.http)
    cid = await make_group(node.http, alice, bob)
    alice_sock, bob_sock = [await connect(node.url, account) for account in (alice, bob)]
    try:
        queue = Queue(node.writer)
        async with node.writer.held():
            before = await queue.add(alice_sock.call("chat:send", send(cid, "before", "a-1")))
            leave = await queue.add(bob_sock.call("conversation:leave", {"conversation_id": cid}))
            after = await queue.add(alice_sock.call("chat:send", send(cid, "after", "a-2")))
            batches_held = node.batches()
        acks = await asyncio.gather(before, leave, after)
    finally:
        for client in (alice_sock, bob_sock):
            await client.close()
    assert [ack["ok"] for ack in acks] == [True, True, True], acks
    stored = await history(node, alice, cid)
    assert [(m["seq"], m["kind"]) for m in stored] == [(1, "text"), (2, "system"), (3, "text")], stored
    assert stored[1]["sender_id"] == bob.user_id
    count, total = node.batches()
    assert (count - batches_held[0], total - batches_held[1]) == (2, 2), (
        "a message, the leave alone, a message"
    )


class HalfWay:
    """The writer's checkpoint: each batch attempt waits there, with its seqs taken, until let go."""

    def __init__(self, writer: MessageWriter) -> None:
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()
        writer.checkpoint = self.wait

    async def wait(self) -> None:
        self.reached.set()
        await self.go_on.wait()

    def stop_again(self) -> None:
        self.reached.clear()
        self.go_on.clear()


async def database_query(database: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """A statement on a connection of its own, straight to PostgreSQL (never through the proxy)."""
    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def proxied_node(backend: Backend) -> AsyncIterator[tuple[Node, TcpProxy, str]]:
    """A node whose database (PostgreSQL) is reached through a proxy the test cuts: (node, proxy, its
    database's name)."""
    if backend.name != "postgres":
        pytest.skip("a SQLite file cannot be cut away from the process that has it open")
    database = backend.database_url.rsplit("/", 1)[1]
    proxy = TcpProxy(PG_HOST, PG_PORT).start()
    try:
        proxied = f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{proxy.port}/{database}"
        async with serving(backend, DATABASE_URL=proxied) as node:
            yield node, proxy, database
    finally:
        proxy.close()


async def stored_in(database: str, cid: str) -> tuple[int, int]:
    """(the conversation's last seq, its messages), straight from PostgreSQL."""
    rows = await database_query(
        database,
        "SELECT c.last_seq, count(m.id) FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id"
        " WHERE c.id = $1 GROUP BY c.last_seq",
        uuid.UUID(cid),
    )
    return rows[0][0], rows[0][1]


TERMINATE_WRITER = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = $1 AND state = 'idle in transaction' AND query LIKE 'UPDATE conversations%'
"""


async def test_a_database_cut_half_way_through_a_batch_stores_none_of_it(backend: Backend) -> None:
    async with proxied_node(backend) as (node, proxy, database):
        alice, bob = await register_and_login(node.http), await register_and_login(node.http)
        cid = await make_group(node.http, alice, bob)
        socks = [await connect(node.url, account) for account in (alice, bob)]
        try:
            await cut_half_way(node, proxy, database, cid, socks)
        finally:
            for client in socks:
                await client.close()


async def send_held_batch(
    node: Node, socks: list[RecordingClient], cid: str, tag: str, count: int
) -> list[asyncio.Task[Any]]:
    queue = Queue(node.writer)
    async with node.writer.held():
        for index in range(count):
            sock = socks[index % len(socks)]
            await queue.add(sock.call("chat:send", send(cid, f"{tag} {index}", f"{tag}-{index}")))
    return queue.calls


async def cut_half_way(
    node: Node, proxy: TcpProxy, database: str, cid: str, socks: list[RecordingClient]
) -> None:
    half_way = HalfWay(node.writer)
    # The writer's connection is terminated half way: the batch is written again, once, on a new one.
    calls = await send_held_batch(node, socks, cid, "kept", 4)
    await half_way.reached.wait()
    terminated = await database_query(database, TERMINATE_WRITER, database)
    assert [row[0] for row in terminated] == [True], "the writer's connection, idle in its transaction"
    half_way.go_on.set()
    acks = await asyncio.gather(*calls)
    assert [ack["data"]["message"]["seq"] for ack in acks] == [1, 2, 3, 4], acks

    # The database goes away half way: every message of the batch fails, none is stored.
    half_way.stop_again()
    calls = await send_held_batch(node, socks, cid, "lost", 4)
    await half_way.reached.wait()
    proxy.cut()
    half_way.go_on.set()
    acks = await asyncio.gather(*calls)
    assert [ack["ok"] for ack in acks] == [False] * 4, acks
    assert {ack["error"]["code"] for ack in acks} == {"UNAVAILABLE"}, acks
    assert await stored_in(database, cid) == (4, 4), "no seq taken, no message kept of the failed batch"

    # Once the database is back, the next batch is written, with the seqs that follow.
    proxy.restore()
    node.writer.checkpoint = None
    again = await socks[0].call("chat:send", send(cid, "lost 0", "lost-0"))
    assert again["ok"] is True, again
    assert again["data"]["message"]["seq"] == 5
    heard = await socks[1].wait_for("chat:message", index=2)
    assert heard["message"]["seq"] == 5, "bob's socket heard kept 0, kept 2 and now this one"


WAITING_ON_A_LOCK = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'"


async def test_a_removal_on_another_node_that_deadlocks_with_a_batch_is_run_again(
    node: Node, backend: Backend
) -> None:
    """The batch holds the conversation's row; bob's removal on another node deletes his participant row
    and waits for the conversation's; the batch's insert then advances bob's read state, waiting for the
    removal: PostgreSQL breaks the deadlock by rolling one back, and that one is run again."""
    if backend.name != "postgres":
        pytest.skip("SQLite runs one write transaction at a time: there is no deadlock to break")
    database = backend.database_url.rsplit("/", 1)[1]
    alice, bob = await register_and_login(node.http), await register_and_login(node.http)
    cid = await make_group(node.http, alice, bob)
    bob_sock = await connect(node.url, bob)
    half_way = HalfWay(node.writer)
    try:
        sent = asyncio.ensure_future(bob_sock.call("chat:send", send(cid, "racing", "r-1")))
        await half_way.reached.wait()
        async with serving(backend) as other_node:
            leaving = asyncio.ensure_future(
                other_node.http.post(f"/api/conversations/{cid}/leave", headers=auth(bob))
            )
            while (await database_query(database, WAITING_ON_A_LOCK, database))[0][0] == 0:
                await asyncio.sleep(0.05)  # until the removal waits for the conversation's row
            half_way.go_on.set()
            ack, left = await asyncio.gather(sent, leaving)
    finally:
        await bob_sock.close()
    assert left.status_code == 200, left.text
    stored = await history(node, alice, cid)
    assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1)), stored
    if ack["ok"]:
        assert [m["kind"] for m in stored] == ["text", "system"], "the send won, then bob left"
    else:
        assert ack["error"]["code"] == "FORBIDDEN", ack
        assert [m["kind"] for m in stored] == ["system"], "bob left first; his message was refused"


async def test_a_removal_committed_while_a_batch_waits_for_the_conversation_refuses_its_message(
    node: Node, backend: Backend
) -> None:
    """Bob's removal, in flight on another connection, holds the conversation's row when his send
    arrives: the batch waits for that row, and once the removal commits it must see bob gone. A
    participation check read from the statement's snapshot would still count him and store his text
    after the removal."""
    if backend.name != "postgres":
        pytest.skip("SQLite runs one write transaction at a time: no batch waits on another's row")
    database = backend.database_url.rsplit("/", 1)[1]
    alice, bob = await register_and_login(node.http), await register_and_login(node.http)
    cid = await make_group(node.http, alice, bob)
    bob_sock = await connect(node.url, bob)
    removal = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
    try:
        transaction = removal.transaction()
        await transaction.start()
        await removal.execute(
            "DELETE FROM conversation_participants WHERE conversation_id = $1 AND user_id = $2",
            uuid.UUID(cid),
            uuid.UUID(bob.user_id),
        )
        await removal.execute("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", uuid.UUID(cid))
        sent = asyncio.ensure_future(bob_sock.call("chat:send", send(cid, "too late", "late-1")))
        while (await database_query(database, WAITING_ON_A_LOCK, database))[0][0] == 0:
            await asyncio.sleep(0.05)  # until the batch waits for the conversation's row
        await transaction.commit()
        ack = await sent
    finally:
        await removal.close()
        await bob_sock.close()
    assert not ack["ok"], ack
    assert ack["error"]["code"] == "FORBIDDEN", ack
    assert await history(node, alice, cid) == [], "nothing stored after bob's removal"


STATEMENT_WAITS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = $1 AND state = 'active' AND query LIKE 'WITH batch AS%' AND wait_event_type = 'Lock'
"""
STATEMENT_RUNS = """
SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE 'WITH batch AS%'
"""
"""Batches being written: the servers of other tests on the same database may keep a writer's
connection idle after a batch, and count only once one is under way again."""
TERMINATE_WAITING_WRITER = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = $1 AND state = 'active' AND query LIKE 'WITH batch AS%' AND wait_event_type = 'Lock'
"""


async def until_counted(database: str, query: str, wanted: int) -> None:
    """Poll PostgreSQL's view of its backends until `query` counts `wanted` (10 s at most)."""
    try:
        async with asyncio.timeout(10):
            while (await database_query(database, query, database))[0][0] != wanted:
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"PostgreSQL never counted {wanted} of {query}") from None


@contextlib.asynccontextmanager
async def conversation_locked(database: str, cid: str) -> AsyncIterator[None]:
    """Another transaction holds the conversation's row until the block is left: a batch waits for it."""
    holder = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)
    try:
        async with holder.transaction():
            await holder.execute("SELECT id FROM conversations WHERE id = $1 FOR UPDATE", uuid.UUID(cid))
            yield
    finally:
        await holder.close()


async def test_a_cut_while_the_one_statement_runs_stores_none_of_it(backend: Backend) -> None:
    async with proxied_node(backend) as (node, proxy, database):
        alice, bob = await register_and_login(node.http), await register_and_login(node.http)
        cid = await make_group(node.http, alice, bob)
        socks = [await connect(node.url, account) for account in (alice, bob)]
        try:
            # The writer's backend is terminated while its statement waits: written again on a new one.
            async with conversation_locked(database, cid):
                calls = await send_held_batch(node, socks, cid, "kept", 4)
                await until_counted(database, STATEMENT_WAITS, 1)
                terminated = await database_query(database, TERMINATE_WAITING_WRITER, database)
                assert [row[0] for row in terminated] == [True]
                await until_counted(database, STATEMENT_WAITS, 1)  # the same batch, on a new connection
            acks = await asyncio.gather(*calls)
            assert [ack["data"]["message"]["seq"] for ack in acks] == [1, 2, 3, 4], acks

            # The database goes away while the statement waits: every message fails, and none is stored
            # later either (PostgreSQL ends a statement whose client is gone, it does not commit it).
            async with conversation_locked(database, cid):
                calls = await send_held_batch(node, socks, cid, "lost", 4)
                await until_counted(database, STATEMENT_WAITS, 1)
                proxy.cut()
                acks = await asyncio.gather(*calls)
                await until_counted(database, STATEMENT_RUNS, 0)
            assert [ack["ok"] for ack in acks] == [False] * 4, acks
            assert {ack["error"]["code"] for ack in acks} == {"UNAVAILABLE"}, acks
            assert await stored_in(database, cid) == (4, 4), "no seq taken, no message kept"

            proxy.restore()
            again = await socks[0].call("chat:send", send(cid, "lost 0", "lost-0"))
            assert again["ok"] is True, again
            assert again["data"]["message"]["seq"] == 5
        finally:
            for client in socks:
                await client.close()


async def test_a_statement_whose_answer_is_lost_is_written_once_and_broadcast_once(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """The statement commits and its answer never arrives: written again on a new connection, it finds
    the message stored with its own id, and answers (and broadcasts) it as stored, once."""
    caplog.set_level(logging.INFO, logger="app.modules.chat.writer")
    async with proxied_node(backend) as (node, proxy, database):
        alice, bob = await register_and_login(node.http), await register_and_login(node.http)
        cid = await make_group(node.http, alice, bob)
        alice_sock, bob_sock = [await connect(node.url, account) for account in (alice, bob)]
        try:
            first = await alice_sock.call("chat:send", send(cid, "first", "f-1"))
            assert first["ok"] is True, first  # the writer's connection is open and idle now
            ways_before = node.ways()
            proxy.lose_next_answer()
            lost = await alice_sock.call("chat:send", send(cid, "answer lost", "f-2"))
            after = await alice_sock.call("chat:send", send(cid, "after", "f-3"))
            heard = await seqs_heard(bob_sock, {1, 2, 3})
        finally:
            for client in (alice_sock, bob_sock):
                await client.close()
        assert lost["ok"] is True, lost
        assert (lost["data"]["message"]["seq"], after["data"]["message"]["seq"]) == (2, 3)
        assert heard == [1, 2, 3], "each message broadcast once, in order"
        assert await stored_in(database, cid) == (3, 3)
        assert written_by(ways_before, node.ways()) == {"at_once": 2, "transaction": 0}
        retries = [record for record in caplog.records if record.getMessage().endswith("writing again")]
        assert len(retries) == 1, "the answer lost was the writer's, which wrote the batch again once"
