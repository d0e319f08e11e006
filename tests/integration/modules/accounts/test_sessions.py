"""Login sessions in the database, on both backends: refresh-token reuse, expiry, a new process.

The in-process test client runs one request at a time; races between requests are in
`tests/e2e/sessions/test_session_races.py`, against real server processes.
"""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import update

from app.core.db.engine import create_engine
from app.modules.accounts.models import LoginSession
from tests.support.accounts import (
    client_for,
    record_revocations,
)
from tests.support.backends import Backend
from tests.support.clients import register_and_login


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/api/auth/me", headers=bearer(access_token))


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refresh_token": refresh_token})


async def test_a_rotated_refresh_token_used_again_revokes_its_session(backend: Backend) -> None:
    async with client_for(backend, REFRESH_REUSE_GRACE="0") as client:
        account = await register_and_login(client)
        seen = record_revocations(client)
        rotated = await refresh(client, account.refresh_token)
        assert rotated.status_code == 200
        pair = rotated.json()["data"]
        replayed = await refresh(client, account.refresh_token)
        assert replayed.status_code == 401
        assert replayed.json()["error"]["code"] == "UNAUTHORIZED"
        assert (await refresh(client, pair["refresh_token"])).status_code == 401, "the chain ends too"
        current = await me(client, pair["access_token"])
        assert current.status_code == 401
        assert current.json()["error"]["code"] == "SESSION_REVOKED"
        assert [(e.user_id, e.session_ids, e.reason) for e in seen] == [
            (uuid.UUID(account.user_id), (account.session_id,), "session_revoked")
        ]


async def test_an_older_refresh_token_used_again_revokes_its_session_even_at_once(backend: Backend) -> None:
    async with client_for(backend) as client:
        account = await register_and_login(client)
        second = (await refresh(client, account.refresh_token)).json()["data"]
        third = (await refresh(client, second["refresh_token"])).json()["data"]
        assert (await refresh(client, account.refresh_token)).status_code == 401
        assert (await me(client, third["access_token"])).status_code == 401
        assert (await refresh(client, third["refresh_token"])).status_code == 401


async def test_the_token_replaced_a_moment_ago_is_refused_without_revoking(backend: Backend) -> None:
    async with client_for(backend, REFRESH_REUSE_GRACE="60") as client:
        account = await register_and_login(client)
        pair = (await refresh(client, account.refresh_token)).json()["data"]
        assert (await refresh(client, account.refresh_token)).status_code == 401
        assert (await me(client, pair["access_token"])).status_code == 200
        assert (await refresh(client, pair["refresh_token"])).status_code == 200


@pytest.mark.parametrize("shape", ["forged-family", "two-parts", "not-a-session-id"])
async def test_a_forged_refresh_token_revokes_nothing(backend: Backend, shape: str) -> None:
    async with client_for(backend, REFRESH_REUSE_GRACE="0") as client:
        account = await register_and_login(client)
        family_and_secret = account.refresh_token.split(".", 1)[1]
        token = {
            "forged-family": f"{account.session_id}.{uuid.uuid4().hex}.{uuid.uuid4().hex}",
            "two-parts": f"{account.session_id}.{uuid.uuid4().hex}",
            "not-a-session-id": f"not-a-session.{family_and_secret}",
        }[shape]
        assert (await refresh(client, token)).status_code == 401
        assert (await me(client, account.access_token)).status_code == 200
        assert (await refresh(client, account.refresh_token)).status_code == 200


async def test_an_expired_session_ends_its_tokens(backend: Backend) -> None:
    async with client_for(backend) as client:
        account = await register_and_login(client)
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        engine = create_engine(backend.settings())  # the app runs on an event loop of its own
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(LoginSession)
                    .where(LoginSession.id == uuid.UUID(account.session_id))
                    .values(expires_at=past)
                )
        finally:
            await engine.dispose()
        response = await me(client, account.access_token)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "SESSION_REVOKED"
        assert (await refresh(client, account.refresh_token)).status_code == 401


async def test_sessions_outlive_every_process_and_the_state_backend(backend: Backend) -> None:
    """A new app on the same database, with an empty state backend (a new Redis prefix: as after a
    Redis restart without persistence), honours every token the old one issued."""
    async with client_for(backend) as before:
        account = await register_and_login(before)
        rotated = (await refresh(before, account.refresh_token)).json()["data"]
    async with client_for(backend) as after:
        assert (await me(after, rotated["access_token"])).status_code == 200
        renewed = await refresh(after, rotated["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        assert (await me(after, renewed.json()["data"]["access_token"])).status_code == 200
