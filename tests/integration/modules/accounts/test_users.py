"""Who may register as what, and finding a user by name: on both backends."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.support.clients import PASSWORD, register_and_login


async def register(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/api/auth/register", json={"username": username, "password": password})


def stem() -> str:
    return uuid.uuid4().hex[:8]


@pytest.mark.parametrize(
    ("first", "look_alike"),
    [
        ("alice{}", "aIice{}"),  # capital I for l
        ("al{}", "a1{}"),  # one for l
        ("bob{}", "b0b{}"),  # zero for o
        ("jim{}", "jirn{}"),  # r n for m
        ("carol{}", "CAROL{}"),  # case alone: the existing rule
    ],
)
async def test_a_username_that_looks_like_another_is_refused(
    app_client: httpx.AsyncClient, first: str, look_alike: str
) -> None:
    key = stem()
    assert (await register(app_client, first.format(key))).status_code == 201
    refused = await register(app_client, look_alike.format(key))
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["details"] == {"field": "username"}
    assert (await register(app_client, f"{first.format(key)}x")).status_code == 201, (
        "a different name is fine"
    )


async def test_concurrent_look_alikes_give_one_user(app_client: httpx.AsyncClient) -> None:
    key = stem()
    names = [f"paul{key}", f"pau1{key}", f"PAUL{key}", f"paU1{key}"]
    answers = await asyncio.gather(*(register(app_client, name) for name in names))
    assert sorted(response.status_code for response in answers) == [201, 409, 409, 409]


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password1", "common"),
        ("Qwertyuiop", "common"),
        ("iloveyou2", "common"),
        ("zzzzzzzzzzzz", "one character"),
        ("{username}-2026", "username"),
    ],
)
async def test_weak_passwords_are_refused_naming_the_field(
    app_client: httpx.AsyncClient, password: str, why: str
) -> None:
    username = f"w{stem()}"
    response = await register(app_client, username, password.format(username=username.upper()))
    assert response.status_code == 422, (why, response.text)
    error = response.json()["error"]
    assert error["details"] == {"field": "password"}
    assert error["message"].startswith("password: ")
    assert (await register(app_client, username)).status_code == 201, "the name stayed free"


async def test_users_are_looked_up_by_exact_name_with_public_fields_only(
    app_client: httpx.AsyncClient,
) -> None:
    alice = await register_and_login(app_client)
    bob = await register_and_login(app_client)
    headers = {"Authorization": f"Bearer {alice.access_token}"}
    found = await app_client.get("/api/users", params={"username": bob.username.upper()}, headers=headers)
    assert found.status_code == 200, found.text
    assert found.json()["data"] == {"id": bob.user_id, "username": bob.username, "display_name": bob.username}
    partial = await app_client.get("/api/users", params={"username": bob.username[:-1]}, headers=headers)
    assert partial.status_code == 404, "an exact name, never a search"
    assert partial.json()["error"]["code"] == "NOT_FOUND"
    assert (await app_client.get("/api/users", params={"username": bob.username})).status_code == 401
    missing = await app_client.get("/api/users", headers=headers)
    assert missing.status_code in {400, 422}
    assert missing.json()["error"]["code"] == "VALIDATION_ERROR"
