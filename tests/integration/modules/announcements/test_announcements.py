"""Announcements over REST and the `session:ready` part, on both backends."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.db import Database, UnitOfWork
from app.modules.accounts.service import UserService
from app.modules.announcements.service import AnnouncementService
from tests.support.backends import Backend
from tests.support.clients import Account, register_admin, register_and_login


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    """The test's own engine (the in-process app runs on another event loop)."""
    database = Database(backend.settings())
    yield database
    await database.dispose()


async def missed(db: Database, account: Account) -> list[str]:
    async with UnitOfWork(db) as uow:
        rows = await uow.service(AnnouncementService).missed_by(
            uuid.UUID(account.user_id), dt.datetime.now(dt.UTC)
        )
    return [str(row.id) for row in rows]


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


async def announce(http: httpx.AsyncClient, admin: Account, title: str, **extra: object) -> dict[str, object]:
    body = {"title": title, "body": f"{title} body", **extra}
    response = await http.post("/api/admin/announcements", json=body, headers=bearer(admin))
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()["data"]
    return data


async def test_admin_announces_and_everyone_lists(app_client: httpx.AsyncClient, db: Database) -> None:
    admin = await register_admin(app_client, db.settings)
    reader = await register_and_login(app_client)
    made = await announce(
        app_client,
        admin,
        "Maintenance",
        url="https://status.example.com/1",
        image_url="https://cdn.example.com/a.png",
        metadata={"severity": "info", "tags": ["ops"]},
    )
    assert made["url"] == "https://status.example.com/1"
    assert made["metadata"] == {"severity": "info", "tags": ["ops"]}
    uuid.UUID(str(made["id"]))

    listed = await app_client.get("/api/announcements", headers=bearer(reader))
    assert listed.status_code == 200
    assert made in listed.json()["data"]["items"]


async def test_since_is_exclusive_and_newest_first(app_client: httpx.AsyncClient, db: Database) -> None:
    admin = await register_admin(app_client, db.settings)
    first = await announce(app_client, admin, "first")
    second = await announce(app_client, admin, "second")
    third = await announce(app_client, admin, "third")

    response = await app_client.get(
        "/api/announcements", params={"since": str(first["created_at"])}, headers=bearer(admin)
    )
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["data"]["items"]] == [third["id"], second["id"]]

    moment = dt.datetime.fromisoformat(str(first["created_at"]))
    for spelling in (
        moment.astimezone(dt.timezone(dt.timedelta(hours=9))).isoformat(),
        moment.replace(tzinfo=None).isoformat(),
    ):
        same = await app_client.get("/api/announcements", params={"since": spelling}, headers=bearer(admin))
        assert same.status_code == 200, same.text
        assert [item["id"] for item in same.json()["data"]["items"]] == [third["id"], second["id"]]

    limited = await app_client.get(
        "/api/announcements", params={"since": str(first["created_at"]), "limit": 1}, headers=bearer(admin)
    )
    assert [item["id"] for item in limited.json()["data"]["items"]] == [third["id"]]


async def test_non_admin_is_forbidden_and_anonymous_unauthorized(app_client: httpx.AsyncClient) -> None:
    user = await register_and_login(app_client)
    body = {"title": "Hi", "body": "there"}
    forbidden = await app_client.post("/api/admin/announcements", json=body, headers=bearer(user))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "FORBIDDEN"
    anonymous = await app_client.post("/api/admin/announcements", json=body)
    assert anonymous.status_code == 401
    listing = await app_client.get("/api/announcements")
    assert listing.status_code == 401
    stored = await app_client.get("/api/announcements", headers=bearer(user))
    assert all(item["title"] != "Hi" for item in stored.json()["data"]["items"])


BAD_BODIES: list[tuple[dict[str, object], str]] = [
    ({"body": "no title"}, "title"),
    ({"title": "no body"}, "body"),
    ({"title": "   ", "body": "blank title"}, "title"),
    ({"title": "t", "body": ""}, "body"),
    ({"title": "t" * 201, "body": "long title"}, "title"),
    ({"title": "t", "body": "b", "url": "javascript:alert(1)"}, "url"),
    ({"title": "t", "body": "b", "image_url": "not a url"}, "image_url"),
    ({"title": "t", "body": "b", "metadata": ["not", "an", "object"]}, "metadata"),
    ({"title": "t", "body": "b", "colour": "red"}, "colour"),
    ({"title": "t", "body": "b", "metadata": {"blob": "x" * 5000}}, "metadata"),
]


async def test_bad_announcement_is_422_naming_the_field(app_client: httpx.AsyncClient, db: Database) -> None:
    admin = await register_admin(app_client, db.settings)
    before = (await app_client.get("/api/announcements", headers=bearer(admin))).json()["data"]
    for body, field in BAD_BODIES:
        response = await app_client.post("/api/admin/announcements", json=body, headers=bearer(admin))
        assert response.status_code == 422, (body, response.text)
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert field in error["message"], (body, error)
    after = (await app_client.get("/api/announcements", headers=bearer(admin))).json()["data"]
    assert after == before, "a rejected announcement was stored"


async def test_bad_since_is_rejected(app_client: httpx.AsyncClient) -> None:
    user = await register_and_login(app_client)
    for params in ({"since": "yesterday"}, {"limit": 0}, {"limit": 201}):
        response = await app_client.get("/api/announcements", params=params, headers=bearer(user))
        assert response.status_code in {400, 422}, (params, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_missed_since_last_seen_or_for_a_week(app_client: httpx.AsyncClient, db: Database) -> None:
    admin = await register_admin(app_client, db.settings)
    before = await announce(app_client, admin, "before you left")
    user = await register_and_login(app_client)
    assert str(before["id"]) in await missed(db, user)

    async with UnitOfWork(db) as uow:
        await uow.service(UserService).touch_last_seen(uuid.UUID(user.user_id))
    assert str(before["id"]) not in await missed(db, user)
    after = await announce(app_client, admin, "while you were away")
    assert (await missed(db, user))[0] == after["id"]

    async with UnitOfWork(db) as uow:
        old = await uow.service(AnnouncementService).missed_by(
            uuid.UUID(user.user_id), dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
        )
        fresh = await uow.service(AnnouncementService).missed_by(
            uuid.uuid4(), dt.datetime.now(dt.UTC) + dt.timedelta(days=7)
        )
    assert str(after["id"]) in [str(row.id) for row in old]
    assert str(before["id"]) not in [str(row.id) for row in fresh]


async def test_missed_is_capped_newest_first(app_client: httpx.AsyncClient, db: Database) -> None:
    admin = await register_admin(app_client, db.settings)
    made = [await announce(app_client, admin, f"burst {index}") for index in range(22)]
    user = await register_and_login(app_client)
    ids = await missed(db, user)
    assert len(ids) == 20
    assert ids[:3] == [made[-1]["id"], made[-2]["id"], made[-3]["id"]]
