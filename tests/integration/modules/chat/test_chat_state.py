"""Chat state over REST on both backends: notifications, muting, owner succession, search folding."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.core.db import Database, UnitOfWork
from app.modules.chat.models import Participant
from app.modules.chat.read_state import ready_unread_summary, unread_summary
from app.modules.chat.store import connect_conversation_ids, recent_conversation_ids
from tests.integration.modules.chat.test_rest import auth, conversation, group, send, users
from tests.support.backends import Backend
from tests.support.clients import Account


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    """The test's own engine (the in-process app runs on another event loop)."""
    database = Database(backend.settings())
    yield database
    await database.dispose()


async def notifications(http: httpx.AsyncClient, account: Account, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/notifications", params=params, headers=auth(account))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def unread(http: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await http.get("/api/conversations/unread-count", headers=auth(account))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_notifications_are_paged_and_marked_read(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    for index in range(3):
        assert (await send(app_client, alice, conv["id"], f"@{bob.username} #{index}")).status_code == 201
    assert (await unread(app_client, bob))["notifications"] == 3
    first = await notifications(app_client, bob, limit=2)
    assert [item["body"] for item in first["items"]] == [f"@{bob.username} #2", f"@{bob.username} #1"]
    assert all(item["read_at"] is None for item in first["items"])
    rest = await notifications(app_client, bob, limit=2, cursor=first["next_cursor"])
    assert [item["body"] for item in rest["items"]] == [f"@{bob.username} #0"]
    assert rest["next_cursor"] is None

    middle = first["items"][1]["id"]
    marked = await app_client.put("/api/notifications/read", json={"up_to_id": middle}, headers=auth(bob))
    assert marked.status_code == 200, marked.text
    assert marked.json()["data"] == {"marked": 2, "unread": 1}, "#1 and the older #0"
    listed = (await notifications(app_client, bob))["items"]
    assert [item["read_at"] is None for item in listed] == [True, False, False]
    assert listed[1]["read_at"] >= listed[1]["created_at"]
    assert [item["body"] for item in (await notifications(app_client, bob, unread_only=True))["items"]] == [
        f"@{bob.username} #2"
    ]
    assert (await unread(app_client, bob))["notifications"] == 1
    again = await app_client.put("/api/notifications/read", json={"up_to_id": middle}, headers=auth(bob))
    assert again.json()["data"] == {"marked": 0, "unread": 1}, "marking twice changes nothing"


async def test_notifications_of_others_and_bad_cursors_are_refused(app_client: httpx.AsyncClient) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    await send(app_client, alice, conv["id"], f"hi @{bob.username}")
    bobs = (await notifications(app_client, bob))["items"][0]["id"]
    for up_to in (bobs, str(uuid.uuid4())):
        refused = await app_client.put(
            "/api/notifications/read", json={"up_to_id": up_to}, headers=auth(alice)
        )
        assert refused.status_code == 404, refused.text
    assert (await notifications(app_client, bob))["items"][0]["read_at"] is None
    bad = await app_client.get("/api/notifications", params={"cursor": "garbage"}, headers=auth(bob))
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["field"] == "cursor"
    body = await app_client.put("/api/notifications/read", json={"up_to_id": "nope"}, headers=auth(bob))
    assert body.status_code == 422
    assert (await app_client.get("/api/notifications")).status_code == 401


async def test_a_muted_conversation_leaves_the_totals_and_mentions_no_one(
    app_client: httpx.AsyncClient,
) -> None:
    alice, bob = await users(app_client, 2)
    loud, quiet = (
        await group(app_client, alice, bob, title="loud"),
        await group(app_client, alice, bob, title="q"),
    )
    muted = await app_client.put(
        f"/api/conversations/{quiet['id']}/mute", json={"muted": True}, headers=auth(bob)
    )
    assert muted.status_code == 200, muted.text
    assert muted.json()["data"] == {"conversation_id": quiet["id"], "muted": True}
    await send(app_client, alice, loud["id"], f"@{bob.username} here")
    await send(app_client, alice, quiet["id"], f"@{bob.username} there")
    summary = await unread(app_client, bob)
    assert summary["total"] == 1
    assert [c["conversation_id"] for c in summary["conversations"]] == [loud["id"]]
    assert summary["notifications"] == 1, "no notification from the muted conversation"
    listed = (await app_client.get("/api/conversations", headers=auth(bob))).json()["data"]["items"]
    assert {item["id"]: (item["muted"], item["unread"]) for item in listed} == {
        loud["id"]: (False, 1),
        quiet["id"]: (True, 1),
    }, "a muted conversation is still listed, with its own unread count"
    unmuted = await app_client.put(
        f"/api/conversations/{quiet['id']}/mute", json={"muted": False}, headers=auth(bob)
    )
    assert unmuted.json()["data"]["muted"] is False
    assert (await unread(app_client, bob))["total"] == 2


async def test_mute_is_for_participants_only(app_client: httpx.AsyncClient) -> None:
    alice, bob, carol = await users(app_client, 3)
    conv = await group(app_client, alice, bob)
    outsider = await app_client.put(
        f"/api/conversations/{conv['id']}/mute", json={"muted": True}, headers=auth(carol)
    )
    assert outsider.status_code == 403
    missing = await app_client.put(
        f"/api/conversations/{uuid.uuid4()}/mute", json={"muted": True}, headers=auth(carol)
    )
    assert missing.status_code == 404
    bad = await app_client.put(
        f"/api/conversations/{conv['id']}/mute", json={"muted": "yes"}, headers=auth(bob)
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["field"] == "muted"


def roles(conv: dict[str, Any]) -> dict[str, str]:
    return {p["user_id"]: p["role"] for p in conv["participants"]}


async def make_admin(db: Database, conversation_id: str, account: Account) -> None:
    """There is no route to appoint an admin yet; the role is set in the database."""
    async with UnitOfWork(db) as uow:
        await uow.session.execute(
            update(Participant)
            .where(
                Participant.conversation_id == uuid.UUID(conversation_id),
                Participant.user_id == uuid.UUID(account.user_id),
            )
            .values(role="admin")
        )
        await uow.commit()


async def test_a_group_whose_owner_leaves_gets_the_longest_standing_admin_else_member(
    app_client: httpx.AsyncClient, db: Database
) -> None:
    alice, bob, carol, dave = await users(app_client, 4)
    conv = await group(app_client, alice, bob)
    added = await app_client.post(
        f"/api/conversations/{conv['id']}/participants",
        json={"user_ids": [carol.user_id, dave.user_id]},
        headers=auth(alice),
    )
    assert added.status_code == 200
    await make_admin(db, conv["id"], dave)

    left = await app_client.post(f"/api/conversations/{conv['id']}/leave", headers=auth(alice))
    assert left.status_code == 200, left.text
    after = await conversation(app_client, bob, conv["id"])
    assert roles(after) == {bob.user_id: "member", carol.user_id: "member", dave.user_id: "owner"}, (
        "the admin, though bob has been there longer"
    )
    removed = await app_client.delete(
        f"/api/conversations/{conv['id']}/participants/{dave.user_id}", headers=auth(dave)
    )
    assert removed.json()["data"]["new_owner"] == bob.user_id, "no admin left: the longest-standing member"
    assert roles(await conversation(app_client, bob, conv["id"]))[bob.user_id] == "owner"
    renamed = await app_client.patch(
        f"/api/conversations/{conv['id']}", json={"title": "B"}, headers=auth(bob)
    )
    assert renamed.status_code == 200, "the new owner may manage the group"
    member_leaves = await app_client.delete(
        f"/api/conversations/{conv['id']}/participants/{carol.user_id}", headers=auth(carol)
    )
    assert "new_owner" not in member_leaves.json()["data"], "a member leaving hands nothing on"
    assert roles(await conversation(app_client, bob, conv["id"])) == {bob.user_id: "owner"}


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ("Äpfel und Birnen", "äPFEL"),
        ("ΣΩΚΡΆΤΗΣ", "σωκράτ"),
        ("Привет, мир", "ПРИВЕТ"),
        ("안녕하세요", "녕하"),
    ],
)
async def test_search_folds_case_in_every_script(
    app_client: httpx.AsyncClient, stored: str, query: str
) -> None:
    alice, bob = await users(app_client, 2)
    conv = await group(app_client, alice, bob)
    await send(app_client, alice, conv["id"], stored)
    await send(app_client, alice, conv["id"], "something else")
    found = await app_client.get(
        f"/api/conversations/{conv['id']}/messages/search", params={"q": query}, headers=auth(bob)
    )
    assert [item["body"] for item in found.json()["data"]["items"]] == [stored]


async def test_a_connect_reads_the_same_rooms_and_unread_summary_as_a_request(
    app_client: httpx.AsyncClient, db: Database
) -> None:
    """The handshake's reads run on the driver's connection; their results are the ORM session's."""
    alice, bob = await users(app_client, 2)
    read, mentioned, muted, older = [await group(app_client, alice, bob, title=f"g{i}") for i in range(4)]
    await send(app_client, alice, older["id"], "before the others")
    await app_client.put(f"/api/conversations/{muted['id']}/mute", json={"muted": True}, headers=auth(bob))
    await send(app_client, alice, mentioned["id"], f"@{bob.username} look")
    seen = (await send(app_client, alice, read["id"], "seen")).json()["data"]["seq"]
    marked = await app_client.put(
        f"/api/conversations/{read['id']}/read", json={"last_read_seq": seen}, headers=auth(bob)
    )
    assert marked.status_code == 200, marked.text
    user_id = uuid.UUID(bob.user_id)

    for window in (1, 2, 10):
        async with UnitOfWork(db) as uow:
            expected_rooms = await recent_conversation_ids(uow.session, user_id, window)
            expected_summary = await unread_summary(uow.session, user_id, window)
        assert await connect_conversation_ids(db.reads, user_id, window) == expected_rooms
        assert await ready_unread_summary(db.reads, user_id, window) == expected_summary
    summary = await ready_unread_summary(db.reads, user_id, 10)
    assert [entry.conversation_id for entry in summary.conversations] == [mentioned["id"], older["id"]]
    assert (summary.total, summary.conversations[0].mentions, summary.notifications) == (2, 1, 1)
    last = summary.conversations[0].last_message
    assert last is not None
    assert last.body == f"@{bob.username} look"
