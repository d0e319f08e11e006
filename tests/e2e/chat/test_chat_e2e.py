"""Chat over real server processes and real Socket.IO clients.

On PostgreSQL + Redis there are two nodes sharing the database and Redis, and the clients of one
test are spread over both; on SQLite + in process there is one node.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from tests.support.backends import Backend
from tests.support.clients import Account, RecordingClient, register_and_login
from tests.support.server import ServerProcess, running

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def nodes(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two nodes on PostgreSQL + Redis, one on SQLite; `nodes[0]` and `nodes[-1]` are the two ends."""
    logs = tmp_path_factory.mktemp("chat")
    env = backend.env(RATE_LIMIT_CHAT="1000/1", RATE_LIMIT_DEFAULT="1000/1")
    count = 2 if backend.redis_url else 1
    with running([ServerProcess(env, logs / f"node-{index}.log") for index in range(count)]) as started:
        yield started


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


@dataclass
class World:
    nodes: list[ServerProcess]
    http: httpx.AsyncClient
    secret: str
    made: list[RecordingClient]

    async def user(self) -> Account:
        """A user of an external issuer (a signed token without a session), provisioned on first use.

        Sessions of built-in accounts live in one process on SQLite, and registering costs a password
        hash; an external user is accepted by every node at once.
        """
        user_id = str(uuid.uuid4())
        now = dt.datetime.now(dt.UTC)
        claims = {"sub": user_id, "preferred_username": f"u{user_id[:8]}", "iat": now, "exp": now + HOUR}
        token = jwt.encode(claims, self.secret, algorithm="HS256")
        me = await self.http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text
        return Account(user_id, me.json()["data"]["username"], token, "", "")

    async def group(self, owner: Account, *others: Account) -> str:
        response = await self.http.post(
            "/api/conversations",
            json={"kind": "group", "title": "e2e", "participant_ids": [o.user_id for o in others]},
            headers=auth(owner),
        )
        assert response.status_code == 201, response.text
        conversation_id: str = response.json()["data"]["id"]
        return conversation_id

    async def connect(self, account: Account, node: int = 0) -> RecordingClient:
        client = RecordingClient()
        self.made.append(client)
        await client.connect(self.nodes[node % len(self.nodes)].url, account.access_token)
        await client.wait_for("session:ready")
        return client

    async def history(self, account: Account, conversation_id: str, **params: Any) -> dict[str, Any]:
        response = await self.http.get(
            f"/api/conversations/{conversation_id}/messages", params=params, headers=auth(account)
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data


@pytest.fixture
async def world(backend: Backend, nodes: list[ServerProcess]) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=15) as http:
        made = World(nodes, http, backend.env()["JWT_SECRET"], [])
        yield made
        for client in made.made:
            await client.close()


def send_payload(conversation_id: str, body: str, client_msg_id: str | None = None) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "body": body,
        "client_msg_id": client_msg_id or uuid.uuid4().hex,
    }


async def test_send_reaches_the_room_but_not_the_sending_socket(world: World) -> None:
    alice = await register_and_login(world.http)
    bob, eve = await world.user(), await world.user()
    cid = await world.group(alice, bob)
    alice_tab, alice_other_tab = await world.connect(alice, 0), await world.connect(alice, 1)
    bob_sock, eve_sock = await world.connect(bob, 1), await world.connect(eve, 0)
    payload = {**send_payload(cid, "hello"), "sender_id": bob.user_id, "seq": 77}
    ack = await alice_tab.call("chat:send", payload)
    assert ack["ok"] is True, ack
    message = ack["data"]["message"]
    assert (message["seq"], message["sender_id"], message["body"]) == (1, alice.user_id, "hello")
    assert (await bob_sock.wait_for("chat:message"))["message"] == message
    assert (await alice_other_tab.wait_for("chat:message"))["message"] == message
    marker = await bob_sock.call("chat:send", send_payload(cid, "marker"))
    assert (await alice_tab.wait_for("chat:message"))["message"] == marker["data"]["message"]
    assert [e["message"]["seq"] for e in alice_tab.events["chat:message"]] == [2], "no echo to the sender"

    bad_payloads: list[tuple[Any, str]] = [
        ({**send_payload(cid, ""), "body": ""}, "body"),
        (send_payload(cid, "   "), "body"),
        (send_payload(cid, "x" * 4001), "body"),
        (send_payload(cid, "a\x00b"), "body"),
        ({**send_payload(cid, "x"), "body": ["not", "text"]}, "body"),
        ({"conversation_id": cid, "body": "no id"}, "client_msg_id"),
        ({**send_payload(cid, "x"), "conversation_id": "nope"}, "conversation_id"),
    ]
    for bad, field in bad_payloads:
        ack = await alice_tab.call("chat:send", bad)
        assert ack["ok"] is False, bad
        assert ack["error"]["code"] == "VALIDATION_ERROR", ack
        assert ack["error"]["details"]["field"] == field, ack
        assert ack["action"] == "ROLLBACK"
    outsider = await eve_sock.call("chat:send", send_payload(cid, "let me in"))
    assert (outsider["error"]["code"], outsider["action"]) == ("FORBIDDEN", "ROLLBACK")
    unknown = await eve_sock.call("chat:send", send_payload(str(uuid.uuid4()), "anyone?"))
    assert unknown["error"]["code"] == "NOT_FOUND"
    await alice_tab.sio.emit("chat:send", send_payload(cid, ""))
    exception = await alice_tab.wait_for("exception")
    assert (exception["event"], exception["code"]) == ("chat:send", "VALIDATION_ERROR")
    assert [m["seq"] for m in (await world.history(alice, cid))["items"]] == [1, 2], "nothing else stored"


async def test_concurrent_senders_on_every_node_get_seqs_one_to_hundred(world: World) -> None:
    owner = await world.user()
    senders = [await world.user() for _ in range(5)]
    cid = await world.group(owner, *senders)
    observer = await world.connect(owner, 1)
    sockets = [await world.connect(account, index) for index, account in enumerate(senders)]

    async def send_twenty(sock: RecordingClient, name: int) -> list[int]:
        seqs = []
        for index in range(20):
            ack = await sock.call("chat:send", send_payload(cid, f"{name}-{index}", f"{name}-{index}"))
            assert ack["ok"] is True, ack
            seqs.append(ack["data"]["message"]["seq"])
        return seqs

    per_sender = await asyncio.gather(*(send_twenty(sock, n) for n, sock in enumerate(sockets)))
    acked = sorted(seq for seqs in per_sender for seq in seqs)
    assert acked == list(range(1, 101))
    assert all(seqs == sorted(seqs) for seqs in per_sender), "each sender's messages keep their order"
    await observer.wait_for("chat:message", index=99, timeout=30)
    received = sorted(event["message"]["seq"] for event in observer.events["chat:message"])
    assert received == list(range(1, 101))
    stored = await world.history(owner, cid, limit=200)
    assert [m["seq"] for m in stored["items"]] == list(range(1, 101))
    logger.info(
        "seq test: %d nodes, 5 senders x 20, acked seqs %d..%d, %d distinct, %d delivered",
        len(world.nodes),
        acked[0],
        acked[-1],
        len(set(acked)),
        len(received),
    )


async def test_concurrent_duplicate_sends_store_and_broadcast_once(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    cid = await world.group(alice, bob)
    tabs = [await world.connect(alice, 0), await world.connect(alice, 1)]
    bob_sock = await world.connect(bob, 1)
    duplicate = send_payload(cid, "only once", "same-id")
    acks = await asyncio.gather(*(tab.call("chat:send", duplicate) for tab in tabs for _ in range(3)))
    assert all(ack["ok"] for ack in acks), acks
    assert len({ack["data"]["message"]["id"] for ack in acks}) == 1
    assert {ack["data"]["message"]["seq"] for ack in acks} == {1}
    marker = await tabs[0].call("chat:send", send_payload(cid, "marker"))
    assert marker["data"]["message"]["seq"] == 2, "a duplicate consumed no seq"
    await bob_sock.wait_for("chat:message", index=1)
    assert [e["message"]["seq"] for e in bob_sock.events["chat:message"]] == [1, 2], "broadcast once"


async def test_sync_after_a_real_disconnect(world: World) -> None:
    alice, bob, eve = await world.user(), await world.user(), await world.user()
    cid = await world.group(alice, bob)
    other = await world.group(alice, bob)
    bob_sock = await world.connect(bob, 0)
    alice_sock = await world.connect(alice, 1)
    first = await alice_sock.call("chat:send", send_payload(cid, "before"))
    await bob_sock.wait_for("chat:message")
    await bob_sock.sio.disconnect()
    await bob_sock.disconnected.wait()
    for index in range(5):
        ack = await alice_sock.call("chat:send", send_payload(cid, f"while away {index} @{bob.username}"))
        assert ack["ok"] is True
    back = await world.connect(bob, 1)
    unread = back.events["session:ready"][0]["unread"]
    assert unread["total"] == 6
    entry = unread["conversations"][0]
    assert (entry["conversation_id"], entry["unread"], entry["last_seq"], entry["mentions"]) == (cid, 6, 6, 5)
    assert entry["last_message"]["body"] == "while away 4 @" + bob.username
    cursor = first["data"]["message"]["seq"]
    full = await back.call(
        "chat:sync",
        {
            "conversations": [
                {"conversation_id": cid, "after_seq": cursor},
                {"conversation_id": other, "after_seq": 0},
            ]
        },
    )
    synced = {c["conversation_id"]: c for c in full["data"]["conversations"]}
    assert [m["seq"] for m in synced[cid]["messages"]] == [2, 3, 4, 5, 6]
    assert (synced[cid]["recovered"], synced[cid]["has_more"], synced[cid]["last_seq"]) == (True, False, 6)
    assert synced[cid]["last_read_seq"] == 0, "bob has read nothing: his read position is 0"
    assert (synced[other]["messages"], synced[other]["recovered"]) == ([], True)
    assert (
        await alice_sock.call("chat:sync", {"conversations": [{"conversation_id": cid, "after_seq": 6}]})
    )["data"]["conversations"][0]["last_read_seq"] == 6, "a sender has read up to what she sent"
    partial = await back.call(
        "chat:sync", {"conversations": [{"conversation_id": cid, "after_seq": 1}], "limit": 2}
    )
    page = partial["data"]["conversations"][0]
    assert [m["seq"] for m in page["messages"]] == [2, 3]
    assert (page["recovered"], page["has_more"]) == (False, True)
    rest = await world.history(bob, cid, after_seq=3)
    assert [m["seq"] for m in rest["items"]] == [4, 5, 6]
    for bad, field in (
        ({"conversations": [{"conversation_id": cid, "after_seq": -1}]}, "conversations.0.after_seq"),
        ({"conversations": [{"conversation_id": cid, "after_seq": 7}]}, "conversations.0.after_seq"),
        ({"conversations": [{"conversation_id": cid, "after_seq": 0}], "limit": 201}, "limit"),
        ({"conversations": []}, "conversations"),
        ({"conversations": [{"conversation_id": cid}]}, "conversations.0"),
    ):
        ack = await back.call("chat:sync", bad)
        assert ack["error"]["code"] == "VALIDATION_ERROR", (bad, ack)
        assert ack["error"]["details"]["field"] == field, ack
        assert field.rsplit(".", 1)[-1] in ack["error"]["message"] or "after_seq" in ack["error"]["message"]
    eve_sock = await world.connect(eve, 0)
    denied = await eve_sock.call("chat:sync", {"conversations": [{"conversation_id": cid, "after_seq": 0}]})
    assert denied["data"]["conversations"][0]["error"]["code"] == "FORBIDDEN", "in its entry, not the call"
    assert denied["data"]["conversations"][0]["messages"] == []


async def test_read_state_follows_across_tabs(world: World) -> None:
    alice, bob = await world.user(), await world.user()
    cid = await world.group(alice, bob)
    alice_sock = await world.connect(alice, 0)
    for index in range(4):
        assert (await alice_sock.call("chat:send", send_payload(cid, f"m{index}")))["ok"]
    assert (await alice_sock.call("conversation:focus", {"conversation_id": cid}))["ok"]
    tab1, tab2 = await world.connect(bob, 0), await world.connect(bob, 1)
    ack = await tab1.call("chat:read", {"conversation_id": cid, "last_read_seq": 3})
    assert ack["data"] == {"conversation_id": cid, "last_read_seq": 3, "unread": 1}
    assert await tab2.wait_for("unread:update") == {"conversation_id": cid, "unread": 1, "total": 1}
    assert await alice_sock.wait_for("chat:read") == {
        "conversation_id": cid,
        "user_id": bob.user_id,
        "last_read_seq": 3,
    }
    backwards = await tab2.call("chat:read", {"conversation_id": cid, "last_read_seq": 1})
    assert backwards["data"]["last_read_seq"] == 3
    beyond = await tab2.call("chat:read", {"conversation_id": cid, "last_read_seq": 5})
    assert beyond["error"]["details"]["field"] == "last_read_seq"
    done = await tab2.call("chat:read", {"conversation_id": cid, "last_read_seq": 4})
    assert done["data"]["unread"] == 0
    assert await tab1.wait_for("unread:update", index=1) == {"conversation_id": cid, "unread": 0, "total": 0}
    assert len(tab2.events["unread:update"]) == 2, "a read that moved nothing sent nothing"


async def test_membership_changes_are_live_on_every_node(world: World) -> None:
    owner, member, newcomer = await world.user(), await world.user(), await world.user()
    cid = await world.group(owner, member)
    owner_sock = await world.connect(owner, 0)
    member_sock = await world.connect(member, 1)
    newcomer_sock = await world.connect(newcomer, 1)
    refused = await newcomer_sock.call("room:join", {"room": f"group:{cid}"})
    assert refused["error"]["code"] == "FORBIDDEN"
    added = await world.http.post(
        f"/api/conversations/{cid}/participants", json={"user_ids": [newcomer.user_id]}, headers=auth(owner)
    )
    assert added.status_code == 200, added.text
    change = {"conversation_id": cid, "user_id": newcomer.user_id, "by": owner.user_id}
    assert await newcomer_sock.wait_for("conversation:participant_added") == change
    assert await member_sock.wait_for("conversation:participant_added") == change
    hello = await owner_sock.call("chat:send", send_payload(cid, "welcome"))
    assert (await newcomer_sock.wait_for("chat:message"))["message"] == hello["data"]["message"]
    assert (await newcomer_sock.call("conversation:focus", {"conversation_id": cid}))["ok"]

    removed = await world.http.delete(
        f"/api/conversations/{cid}/participants/{newcomer.user_id}", headers=auth(owner)
    )
    assert removed.status_code == 200, removed.text
    gone = {"conversation_id": cid, "user_id": newcomer.user_id, "by": owner.user_id}
    assert await newcomer_sock.wait_for("conversation:participant_removed") == gone
    notice = (await member_sock.wait_for("chat:message", index=1))["message"]
    assert (notice["kind"], notice["seq"]) == ("system", 2)
    after = await owner_sock.call("chat:send", send_payload(cid, "after removal"))
    assert (await member_sock.wait_for("chat:message", index=2))["message"] == after["data"]["message"]
    assert [e["message"]["seq"] for e in newcomer_sock.events["chat:message"]] == [1, 2]
    assert (await newcomer_sock.call("conversation:focus", {"conversation_id": cid}))["error"][
        "code"
    ] == "FORBIDDEN"


async def test_leave_over_socket_then_delete(world: World) -> None:
    owner, leaver = await world.user(), await world.user()
    cid = await world.group(owner, leaver)
    owner_sock = await world.connect(owner, 0)
    leaver_tab, leaver_other_tab = await world.connect(leaver, 0), await world.connect(leaver, 1)
    assert (await leaver_other_tab.call("conversation:focus", {"conversation_id": cid}))["ok"]
    ack = await leaver_tab.call("conversation:leave", {"conversation_id": cid})
    assert ack == {"ok": True, "data": {"conversation_id": cid}}
    notice = (await owner_sock.wait_for("chat:message"))["message"]
    assert (notice["kind"], notice["seq"], notice["sender_id"]) == ("system", 1, leaver.user_id)
    assert notice["body"].endswith(" left")
    removed = await owner_sock.wait_for("conversation:participant_removed")
    assert removed == {"conversation_id": cid, "user_id": leaver.user_id, "by": leaver.user_id}
    await leaver_other_tab.wait_for("conversation:participant_removed")
    again = await leaver_tab.call("conversation:leave", {"conversation_id": cid})
    assert again["error"]["code"] == "FORBIDDEN"
    follow_up = await owner_sock.call("chat:send", send_payload(cid, "still here?"))
    assert follow_up["data"]["message"]["seq"] == 2
    observer = await world.connect(owner, 1)
    marker = await owner_sock.call("chat:send", send_payload(cid, "marker"))
    assert (await observer.wait_for("chat:message"))["message"] == marker["data"]["message"]
    assert len(leaver_other_tab.events["chat:message"]) == 1, "the leaver's tabs left the room on every node"

    deleted = await world.http.delete(f"/api/conversations/{cid}", headers=auth(owner))
    assert deleted.status_code == 200
    assert await observer.wait_for("conversation:deleted") == {"conversation_id": cid}
    missing = await observer.call("conversation:focus", {"conversation_id": cid})
    assert missing["error"]["code"] == "NOT_FOUND"


async def test_mentions_reach_the_mentioned_user(world: World) -> None:
    alice, bob, carol = await world.user(), await world.user(), await world.user()
    cid = await world.group(alice, bob, carol)
    alice_sock, bob_sock = await world.connect(alice, 0), await world.connect(bob, 1)
    carol_sock = await world.connect(carol, 0)
    ack = await alice_sock.call("chat:send", send_payload(cid, f"ping @{bob.username}"))
    message = ack["data"]["message"]
    notification = await bob_sock.wait_for("notification:new")
    assert notification["kind"] == "mention"
    assert notification["data"] == {"conversation_id": cid, "message_id": message["id"], "seq": 1}
    await carol_sock.wait_for("chat:message")
    marker = await alice_sock.call("chat:send", send_payload(cid, f"@{carol.username} marker"))
    assert (await carol_sock.wait_for("notification:new"))["data"]["message_id"] == marker["data"]["message"][
        "id"
    ]
    assert len(bob_sock.events["notification:new"]) == 1
    assert "notification:new" not in alice_sock.events
