"""The chat REST API in process, on both backends: conversations, history, search, read state, errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import jwt
import pytest

from app.modules.chat.service import ChatService
from tests.support.clients import Account, register_and_login


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


async def external_user(http: httpx.AsyncClient, secret: str) -> Account:
    """A user of an external issuer: a signed token without a session, provisioned on first use.

    Much faster than registering (no password hashing), and the path every external app takes.
    """
    user_id = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": user_id,
        "preferred_username": f"u{user_id[:8]}",
        "iat": now,
        "exp": now + dt.timedelta(hours=1),
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    me = await http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    return Account(user_id, me.json()["data"]["username"], token, "", "")


async def users(http: httpx.AsyncClient, count: int) -> list[Account]:
    """One registered account (the built-in path), the rest from an external issuer."""
    secret = http.parley.context.settings.jwt.secret  # type: ignore[attr-defined]
    return [await register_and_login(http)] + [await external_user(http, secret) for _ in range(count - 1)]


async def group(
    http: httpx.AsyncClient, owner: Account, *others: Account, title: str = "Team"
) -> dict[str, Any]:
    response = await http.post(
        "/api/conversations",
        json={"kind": "group", "title": title, "participant_ids": [o.user_id for o in others]},
        headers=auth(owner),
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def send(
    http: httpx.AsyncClient,
    account: Account,
    conversation_id: str,
    body: str,
    client_msg_id: str | None = None,
) -> httpx.Response:
    payload: dict[str, Any] = {"body": body}
    if client_msg_id is not None:
        payload["client_msg_id"] = client_msg_id
    return await http.post(
        f"/api/conversations/{conversation_id}/messages", json=payload, headers=auth(account)
    )


async def history(
    http: httpx.AsyncClient, account: Account, conversation_id: str, **params: Any
) -> dict[str, Any]:
    response = await http.get(
        f"/api/conversations/{conversation_id}/messages", params=params, headers=auth(account)
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def conversation(http: httpx.AsyncClient, account: Account, conversation_id: str) -> dict[str, Any]:
    response = await http.get(f"/api/conversations/{conversation_id}", headers=auth(account))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def read_seq(conv: dict[str, Any], account: Account) -> int:
    seq: int = next(p["last_read_seq"] for p in conv["participants"] if p["user_id"] == account.user_id)
    return seq


async def test_group_send_history_and_unread(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    assert {p["user_id"]: p["role"] for p in conv["participants"]} == {
        alice.user_id: "owner",
        bob.user_id: "member",
    }
    for index in range(3):
        response = await send(app_client, alice, conv["id"], f"hello {index}", f"m{index}")
        assert response.status_code == 201, response.text
        message = response.json()["data"]
        assert message["seq"] == index + 1
        assert message["sender_id"] == alice.user_id
        assert message["created_at"].endswith(("Z", "+00:00"))
    page = await history(app_client, bob, conv["id"])
    assert [m["seq"] for m in page["items"]] == [1, 2, 3]
    assert page["has_more"] is False
    state = await conversation(app_client, bob, conv["id"])
    assert state["last_seq"] == 3
    assert read_seq(state, alice) == 3, "the sender's own messages are read"
    assert read_seq(state, bob) == 0
    listed = (await app_client.get("/api/conversations", headers=auth(bob))).json()["data"]
    item = next(i for i in listed["items"] if i["id"] == conv["id"])
    assert item["unread"] == 3
    assert item["last_message"]["body"] == "hello 2"
    unread = (await app_client.get("/api/conversations/unread-count", headers=auth(bob))).json()["data"]
    assert unread["total"] == 3
    assert unread["conversations"][0]["last_message"]["seq"] == 3

    read = await app_client.put(
        f"/api/conversations/{conv['id']}/read", json={"last_read_seq": 2}, headers=auth(bob)
    )
    assert read.json()["data"] == {"conversation_id": conv["id"], "last_read_seq": 2, "unread": 1}
    backwards = await app_client.put(
        f"/api/conversations/{conv['id']}/read", json={"last_read_seq": 1}, headers=auth(bob)
    )
    assert backwards.json()["data"]["last_read_seq"] == 2, "the read cursor never moves back"
    beyond = await app_client.put(
        f"/api/conversations/{conv['id']}/read", json={"last_read_seq": 4}, headers=auth(bob)
    )
    assert beyond.status_code == 422
    assert beyond.json()["error"]["details"]["field"] == "last_read_seq"


async def test_paging_before_and_after(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    for index in range(7):
        assert (await send(app_client, alice, conv["id"], f"m{index}")).status_code == 201
    latest = await history(app_client, bob, conv["id"], limit=3)
    assert [m["seq"] for m in latest["items"]] == [5, 6, 7]
    assert latest["has_more"] is True
    older = await history(app_client, bob, conv["id"], limit=3, before_seq=5)
    assert [m["seq"] for m in older["items"]] == [2, 3, 4]
    assert older["has_more"] is True
    oldest = await history(app_client, bob, conv["id"], limit=3, before_seq=2)
    assert [m["seq"] for m in oldest["items"]] == [1]
    assert oldest["has_more"] is False
    after = await history(app_client, bob, conv["id"], limit=4, after_seq=2)
    assert [m["seq"] for m in after["items"]] == [3, 4, 5, 6]
    assert after["has_more"] is True
    for params in ({"limit": 0}, {"limit": 201}, {"before_seq": -1}, {"after_seq": 2**60}, {"limit": "x"}):
        response = await app_client.get(
            f"/api/conversations/{conv['id']}/messages", params=params, headers=auth(bob)
        )
        assert response.status_code in {400, 422}, (params, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_conversation_list_pages_with_cursor(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    made = [(await group(app_client, alice, bob, title=f"g{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await app_client.get("/api/conversations", params=params, headers=auth(bob))).json()["data"]
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)
    assert len(seen) == len(set(seen))
    bad = await app_client.get("/api/conversations", params={"cursor": "nonsense"}, headers=auth(bob))
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["field"] == "cursor"


async def test_direct_conversation_is_unique_per_pair(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    first = await app_client.post(
        "/api/conversations", json={"kind": "direct", "participant_ids": [bob.user_id]}, headers=auth(alice)
    )
    assert first.status_code == 201
    again = await asyncio.gather(
        *(
            app_client.post(
                "/api/conversations", json={"kind": "direct", "participant_ids": [a.user_id]}, headers=auth(b)
            )
            for a, b in ((alice, bob), (bob, alice), (alice, bob))
        )
    )
    assert {r.status_code for r in again} == {200}
    assert {r.json()["data"]["id"] for r in again} == {first.json()["data"]["id"]}
    direct_id = first.json()["data"]["id"]
    stay = await app_client.post(f"/api/conversations/{direct_id}/leave", headers=auth(bob))
    assert stay.status_code == 403, stay.text
    adding = await app_client.post(
        f"/api/conversations/{direct_id}/participants",
        json={"user_ids": [alice.user_id]},
        headers=auth(alice),
    )
    assert adding.status_code == 403
    for body in (
        {"kind": "direct", "participant_ids": []},
        {"kind": "direct", "participant_ids": [bob.user_id], "title": "x"},
        {"kind": "group", "participant_ids": [bob.user_id]},
        {"kind": "group", "title": "t", "participant_ids": [str(uuid.uuid4())]},
        {"kind": "channel", "title": "t", "participant_ids": []},
        {"kind": "group", "title": "t", "participant_ids": ["not-a-uuid"]},
    ):
        response = await app_client.post("/api/conversations", json=body, headers=auth(alice))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert response.json()["error"]["details"]["field"], body


async def test_access_errors(app_client: httpx.AsyncClient) -> None:
    alice, bob, eve = await users(app_client, 3)
    conv = await group(app_client, alice, bob)
    cid = conv["id"]
    for method, path, body in (
        ("GET", f"/api/conversations/{cid}", None),
        ("GET", f"/api/conversations/{cid}/messages", None),
        ("POST", f"/api/conversations/{cid}/messages", {"body": "hi"}),
        ("GET", f"/api/conversations/{cid}/messages/search?q=hi", None),
        ("PUT", f"/api/conversations/{cid}/read", {"last_read_seq": 0}),
        ("POST", f"/api/conversations/{cid}/leave", None),
        ("PATCH", f"/api/conversations/{cid}", {"title": "mine"}),
        ("DELETE", f"/api/conversations/{cid}", None),
    ):
        response = await app_client.request(method, path, json=body, headers=auth(eve))
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "FORBIDDEN"
        missing = await app_client.request(
            method, path.replace(cid, str(uuid.uuid4())), json=body, headers=auth(eve)
        )
        assert missing.status_code == 404, (method, path, missing.text)
        assert missing.json()["error"]["code"] == "NOT_FOUND"
    member_rename = await app_client.patch(
        f"/api/conversations/{cid}", json={"title": "x"}, headers=auth(bob)
    )
    assert member_rename.status_code == 403
    member_delete = await app_client.delete(f"/api/conversations/{cid}", headers=auth(bob))
    assert member_delete.status_code == 403
    assert (await conversation(app_client, alice, cid))["title"] == "Team"


async def test_bad_message_bodies_store_nothing(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    path = f"/api/conversations/{conv['id']}/messages"
    for body, field in (
        ({"body": ""}, "body"),
        ({"body": "   \n\t"}, "body"),
        ({"body": "x" * 4001}, "body"),
        ({"body": "nul\x00byte"}, "body"),
        ({"body": 42}, "body"),
        ({}, "body"),
        ({"body": "ok", "client_msg_id": "has space"}, "client_msg_id"),
    ):
        response = await app_client.post(path, json=body, headers=auth(alice))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
        assert response.json()["error"]["details"]["field"] == field, response.json()
    assert (await conversation(app_client, alice, conv["id"]))["last_seq"] == 0
    spoofed = await app_client.post(
        path, json={"body": "hi", "sender_id": bob.user_id, "seq": 99}, headers=auth(alice)
    )
    assert spoofed.status_code == 201
    assert spoofed.json()["data"]["sender_id"] == alice.user_id
    assert spoofed.json()["data"]["seq"] == 1


async def test_idempotent_send_including_concurrent_duplicates(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    first = await send(app_client, alice, conv["id"], "once", "dup-1")
    again = await send(app_client, alice, conv["id"], "once", "dup-1")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["data"] == first.json()["data"]
    racing = await asyncio.gather(*(send(app_client, alice, conv["id"], "race", "dup-2") for _ in range(5)))
    assert sorted(r.status_code for r in racing) == [200, 200, 200, 200, 201]
    assert len({r.json()["data"]["id"] for r in racing}) == 1
    other_sender = await send(app_client, bob, conv["id"], "same id, other sender", "dup-1")
    assert other_sender.status_code == 201
    page = await history(app_client, bob, conv["id"])
    assert [m["seq"] for m in page["items"]] == [1, 2, 3], "no seq was consumed by a duplicate"


async def test_search_is_literal_case_insensitive_and_multilingual(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    bodies = [
        "안녕하세요 여러분",
        "Discount 100% today",
        "100 percent",
        "it's fine",
        "file_name.txt",
        "filename",
    ]
    for body in bodies:
        assert (await send(app_client, alice, conv["id"], body)).status_code == 201

    async def found(q: str) -> list[str]:
        response = await app_client.get(
            f"/api/conversations/{conv['id']}/messages/search", params={"q": q}, headers=auth(bob)
        )
        assert response.status_code == 200, response.text
        return [m["body"] for m in response.json()["data"]["items"]]

    assert await found("하세") == ["안녕하세요 여러분"]
    assert await found("DISCOUNT") == ["Discount 100% today"]
    assert await found("100%") == ["Discount 100% today"]
    assert await found("0%'") == []
    assert await found("it's") == ["it's fine"]
    assert await found("e_n") == ["file_name.txt"]
    assert await found("\\") == []
    blank = await app_client.get(
        f"/api/conversations/{conv['id']}/messages/search", params={"q": "  "}, headers=auth(bob)
    )
    assert blank.status_code == 422


async def test_participants_and_roles(app_client: httpx.AsyncClient) -> None:
    owner, member, newcomer, other = await users(app_client, 4)
    conv = await group(app_client, owner, member)
    cid = conv["id"]
    assert (await send(app_client, owner, cid, "before")).status_code == 201
    denied = await app_client.post(
        f"/api/conversations/{cid}/participants", json={"user_ids": [newcomer.user_id]}, headers=auth(member)
    )
    assert denied.status_code == 403
    added = await app_client.post(
        f"/api/conversations/{cid}/participants", json={"user_ids": [newcomer.user_id]}, headers=auth(owner)
    )
    assert added.status_code == 200, added.text
    assert read_seq(added.json()["data"], newcomer) == 1, "a newcomer starts with nothing unread"
    cannot = await app_client.delete(
        f"/api/conversations/{cid}/participants/{owner.user_id}", headers=auth(member)
    )
    assert cannot.status_code == 403
    removed = await app_client.delete(
        f"/api/conversations/{cid}/participants/{member.user_id}", headers=auth(owner)
    )
    assert removed.status_code == 200
    gone = await app_client.delete(
        f"/api/conversations/{cid}/participants/{other.user_id}", headers=auth(owner)
    )
    assert gone.status_code == 404
    himself = await app_client.delete(
        f"/api/conversations/{cid}/participants/{newcomer.user_id}", headers=auth(newcomer)
    )
    assert himself.status_code == 200
    page = await history(app_client, owner, cid)
    notices = [(m["kind"], m["seq"], m["body"].split(" ", 1)[1]) for m in page["items"][1:]]
    assert notices == [("system", 2, "was removed"), ("system", 3, "left")]
    assert [p["user_id"] for p in (await conversation(app_client, owner, cid))["participants"]] == [
        owner.user_id
    ]
    deleted = await app_client.delete(f"/api/conversations/{cid}", headers=auth(owner))
    assert deleted.status_code == 200
    assert (await app_client.get(f"/api/conversations/{cid}", headers=auth(owner))).status_code == 404


async def test_leave_is_atomic(app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    assert (await send(app_client, alice, conv["id"], "hi")).status_code == 201
    original = ChatService._insert_message

    async def failing(self: ChatService, values: dict[str, Any]) -> Any:
        if values["kind"] == "system":
            raise RuntimeError("injected failure between the leave's steps")
        return await original(self, values)

    monkeypatch.setattr(ChatService, "_insert_message", failing)
    response = await app_client.post(f"/api/conversations/{conv['id']}/leave", headers=auth(bob))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL"
    monkeypatch.setattr(ChatService, "_insert_message", original)
    state = await conversation(app_client, bob, conv["id"])
    assert {p["user_id"] for p in state["participants"]} == {alice.user_id, bob.user_id}
    assert state["last_seq"] == 1, "no seq was consumed"
    left = await app_client.post(f"/api/conversations/{conv['id']}/leave", headers=auth(bob))
    assert left.status_code == 200
    last = (await history(app_client, alice, conv["id"]))["items"][-1]
    assert (last["seq"], last["kind"], last["sender_id"]) == (2, "system", bob.user_id)
    assert last["body"].endswith(" left")
    assert (await app_client.get(f"/api/conversations/{conv['id']}", headers=auth(bob))).status_code == 403


async def test_mentions_notify_and_count(app_client: httpx.AsyncClient) -> None:
    alice, bob, carol, outsider = await users(app_client, 4)
    conv = await group(app_client, alice, bob, carol)
    body = f"hey @{bob.username.upper()} and @{outsider.username} and @{alice.username}, @{bob.username}."
    assert (await send(app_client, alice, conv["id"], body)).status_code == 201
    assert (await send(app_client, carol, conv["id"], f"@{bob.username} ping")).status_code == 201
    unread = (await app_client.get("/api/conversations/unread-count", headers=auth(bob))).json()["data"]
    entry = unread["conversations"][0]
    assert (entry["unread"], entry["mentions"]) == (2, 2)
    alice_view = (await app_client.get("/api/conversations/unread-count", headers=auth(alice))).json()["data"]
    assert alice_view["conversations"][0]["mentions"] == 0
    await app_client.put(
        f"/api/conversations/{conv['id']}/read", json={"last_read_seq": 1}, headers=auth(bob)
    )
    after = (await app_client.get("/api/conversations/unread-count", headers=auth(bob))).json()["data"]
    assert after["conversations"][0]["mentions"] == 1
    assert after["total"] == 1
