"""REST writes are rate limited per caller; hostile bodies, cursors and dates answer 4xx, on both backends."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from tests.support.backends import Backend
from tests.support.clients import sign_token

DEEP = "[" * 1000 + "]" * 1000


@pytest.fixture
async def limited(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a REST bucket of 3 writes refilled over a minute, so the fourth is refused."""
    app = create_app(backend.settings(RATE_LIMIT_REST="3/60"))
    async with AsyncTestClient(app=app.litestar, base_url="http://parley.test") as client:
        client.parley = app  # type: ignore[attr-defined]
        yield client


def user(http: httpx.AsyncClient) -> dict[str, str]:
    """Headers of a new user of an external issuer (a signed token; no write to create it)."""
    secret = http.parley.context.settings.jwt.secret  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {sign_token({'sub': str(uuid.uuid4())}, secret)}"}


async def new_group(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = {"kind": "group", "title": "t", "participant_ids": []}
    return await http.post("/api/conversations", json=body, headers=headers)


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "RATE_LIMITED"
    assert error["details"]["limit"] == "3/60"
    assert 0 < error["details"]["retry_after"] <= 20, "a token comes back every 20 s"
    assert int(response.headers["retry-after"]) >= 1


async def test_rest_writes_are_limited_per_user(limited: httpx.AsyncClient) -> None:
    alice, bob = user(limited), user(limited)
    for _ in range(3):
        assert (await new_group(limited, alice)).status_code == 201
    assert_limited(await new_group(limited, alice))
    listed = await limited.get("/api/conversations", headers=alice)
    assert listed.status_code == 200, "reads are not limited"
    assert len(listed.json()["data"]["items"]) == 3, "the refused write stored nothing"
    assert (await new_group(limited, bob)).status_code == 201, "another user has a bucket of their own"


async def test_writes_without_a_valid_token_are_limited_per_address(limited: httpx.AsyncClient) -> None:
    forged = {"Authorization": "Bearer not-a-token"}
    for _ in range(3):
        assert (await limited.post("/api/auth/refresh", json={"refresh_token": "x"})).status_code == 401
    assert_limited(await limited.post("/api/auth/logout", headers=forged))
    assert_limited(await limited.post("/api/auth/register", json={"username": "abc", "password": "x"}))
    assert (await new_group(limited, user(limited))).status_code == 201, "a signed-in user is counted apart"


async def test_user_lookups_are_limited_like_writes(limited: httpx.AsyncClient) -> None:
    alice = user(limited)
    for _ in range(3):
        assert (
            await limited.get("/api/users", params={"username": "nobody"}, headers=alice)
        ).status_code == 404
    assert_limited(await limited.get("/api/users", params={"username": "nobody"}, headers=alice))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/auth/register", DEEP),
        ("/api/auth/register", '{"username": ' + DEEP + "}"),
        ("/api/auth/login", DEEP),
        ("/api/conversations", DEEP),
    ],
)
async def test_json_nested_too_deeply_is_a_validation_error(
    app_client: httpx.AsyncClient, path: str, body: str
) -> None:
    headers = {"Content-Type": "application/json", **user(app_client)}
    response = await app_client.post(path, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]["field"] == "body"


def cursor(stamp: str) -> str:
    return base64.urlsafe_b64encode(f"{stamp}|{uuid.uuid4()}".encode()).decode().rstrip("=")


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"])
async def test_dates_that_overflow_in_utc_are_validation_errors(
    app_client: httpx.AsyncClient, stamp: str
) -> None:
    headers = user(app_client)
    listed = await app_client.get("/api/conversations", params={"cursor": cursor(stamp)}, headers=headers)
    assert listed.status_code == 422, listed.text
    assert listed.json()["error"]["details"]["field"] == "cursor"
    since = await app_client.get("/api/announcements", params={"since": stamp}, headers=headers)
    assert since.status_code == 422, since.text
    assert since.json()["error"]["details"]["field"] == "since"
    extremes = ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00")
    for moment in extremes:
        assert (
            await app_client.get("/api/announcements", params={"since": moment}, headers=headers)
        ).is_success
        page = await app_client.get("/api/conversations", params={"cursor": cursor(moment)}, headers=headers)
        assert page.status_code == 200, page.text
