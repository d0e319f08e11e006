"""Accounts over REST, on both backends."""

from __future__ import annotations

import uuid

import httpx

from tests.support.clients import PASSWORD, register_and_login


async def test_register_login_me(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    response = await app_client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {account.access_token}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["error"] is None
    assert body["data"]["username"] == account.username
    assert body["data"]["session_id"] == account.session_id


async def test_duplicate_username_is_case_insensitive_conflict(app_client: httpx.AsyncClient) -> None:
    name = f"Case{uuid.uuid4().hex[:8]}"
    first = await app_client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
    assert first.status_code == 201
    second = await app_client.post(
        "/api/auth/register", json={"username": name.lower(), "password": PASSWORD}
    )
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "CONFLICT"
