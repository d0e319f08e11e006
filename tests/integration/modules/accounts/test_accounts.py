"""Accounts over REST, on both backends: register, login, me, refresh, logout, login policies, admin."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any, Literal

import httpx
import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy.exc import OperationalError

from app.modules.accounts import service as accounts_service
from app.modules.accounts.service import UserService
from tests.support.accounts import (
    client_for,
    parley,
    record_revocations,
)
from tests.support.backends import Backend
from tests.support.clients import PASSWORD, Account, login, register_admin, register_and_login

TEST_SECRET = "test-secret-test-secret-test-secret-0123"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me_status(client: httpx.AsyncClient, account: Account) -> int:
    return (await client.get("/api/auth/me", headers=bearer(account.access_token))).status_code


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    assert body["data"] is None
    assert set(body) == {"success", "data", "message", "error", "timestamp"}
    error: dict[str, Any] = body["error"]
    return error


def name() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


async def test_register_answers_the_user_in_the_envelope(app_client: httpx.AsyncClient) -> None:
    username = name()
    response = await app_client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["error"] is None
    assert dt.datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    user = body["data"]
    assert user["username"] == username
    assert user["display_name"] == username
    assert uuid.UUID(user["id"])
    assert "password_hash" not in user


async def test_login_answers_the_token_pair(app_client: httpx.AsyncClient) -> None:
    username = name()
    await app_client.post(
        "/api/auth/register", json={"username": username, "password": PASSWORD, "display_name": "Ann"}
    )
    response = await app_client.post(
        "/api/auth/login", json={"username": username.upper(), "password": PASSWORD, "device": "phone"}
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"access_token", "refresh_token", "token_type", "expires_in", "session_id", "user"}
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 900
    assert data["user"]["username"] == username
    assert data["user"]["display_name"] == "Ann"
    claims = jwt.decode(data["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == data["user"]["id"]
    assert claims["sid"] == data["session_id"]
    assert claims["exp"] - claims["iat"] == 900


async def test_me_answers_the_caller(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    response = await app_client.get("/api/auth/me", headers=bearer(account.access_token))
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["error"] is None
    me = body["data"]
    assert me["id"] == account.user_id
    assert me["username"] == account.username
    assert me["session_id"] == account.session_id
    assert me["is_admin"] is False
    created = dt.datetime.fromisoformat(me["created_at"])
    assert abs(created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, {"Authorization": "Bearer x.y.z"}],
)
async def test_me_without_a_valid_token_is_unauthorized(
    app_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await app_client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "UNAUTHORIZED"


async def test_an_expired_access_token_says_token_expired(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    expired, _ = parley(app_client).context.tokens.issue(account.user_id, account.session_id, ttl=-60)
    response = await app_client.get("/api/auth/me", headers=bearer(expired))
    assert response.status_code == 401
    assert error_of(response)["code"] == "TOKEN_EXPIRED"


async def test_duplicate_username_is_case_insensitive_conflict(app_client: httpx.AsyncClient) -> None:
    username = f"Case{uuid.uuid4().hex[:8]}"
    first = await app_client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert first.status_code == 201
    second = await app_client.post(
        "/api/auth/register", json={"username": username.lower(), "password": PASSWORD}
    )
    assert second.status_code == 409
    assert error_of(second)["code"] == "CONFLICT"


async def test_concurrent_registrations_of_one_name_create_one_user(app_client: httpx.AsyncClient) -> None:
    username = name()
    responses = await asyncio.gather(
        *(
            app_client.post("/api/auth/register", json={"username": variant, "password": PASSWORD})
            for variant in (username, username.upper(), username, username.upper())
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert all(error_of(r)["code"] == "CONFLICT" for r in responses if r.status_code == 409)


async def test_wrong_password_and_unknown_user_answer_the_same(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    wrong = await app_client.post(
        "/api/auth/login", json={"username": account.username, "password": "not-the-password"}
    )
    unknown = await app_client.post("/api/auth/login", json={"username": name(), "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    wrong_body, unknown_body = wrong.json(), unknown.json()
    wrong_body.pop("timestamp")
    unknown_body.pop("timestamp")
    assert wrong_body == unknown_body
    assert wrong_body["error"]["code"] == "UNAUTHORIZED"


async def test_wrong_password_and_unknown_user_cost_the_same_hash_check(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timing gives no user away: an unknown name is checked against a dummy hash of the same cost."""
    account = await register_and_login(app_client)
    checked: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, password_hash: str | bytes, password: str | bytes) -> Literal[True]:
            checked.append(str(password_hash).rsplit("$", 2)[0])  # algorithm and cost, not salt or digest
            return super().verify(password_hash, password)

    monkeypatch.setattr(accounts_service, "_hasher", CountingHasher())
    for username in (account.username, name()):
        attempt = {"username": username, "password": "not-it-42"}
        answer = await app_client.post("/api/auth/login", json=attempt)
        assert answer.status_code == 401
    assert len(checked) == 2
    assert checked[0] == checked[1]


async def test_refresh_rotates_the_refresh_token(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    first = await app_client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    pair = first.json()["data"]
    assert pair["session_id"] == account.session_id
    assert pair["refresh_token"] != account.refresh_token
    me = await app_client.get("/api/auth/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    again = await app_client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert again.status_code == 401
    assert error_of(again)["code"] == "UNAUTHORIZED"
    rotated = await app_client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200


async def test_concurrent_refreshes_with_one_token_succeed_once(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    responses = await asyncio.gather(
        *(
            app_client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
            for _ in range(5)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401]


@pytest.mark.parametrize(
    "token",
    ["", "no-dot", f"{uuid.uuid4()}.forged-secret", "x" * 600, "only-session-id."],
    ids=["empty", "no-dot", "forged-secret", "too-long", "only-session-id"],
)
async def test_refresh_with_a_bad_token_is_refused(app_client: httpx.AsyncClient, token: str) -> None:
    response = await app_client.post("/api/auth/refresh", json={"refresh_token": token})
    assert response.status_code in {401, 422}
    assert error_of(response)["code"] in {"UNAUTHORIZED", "VALIDATION_ERROR"}


async def test_logout_revokes_the_session(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    revoked = record_revocations(app_client)
    response = await app_client.post("/api/auth/logout", headers=bearer(account.access_token))
    assert response.status_code == 200
    assert response.json()["success"] is True
    me = await app_client.get("/api/auth/me", headers=bearer(account.access_token))
    assert me.status_code == 401
    assert error_of(me)["code"] == "SESSION_REVOKED"
    refresh = await app_client.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401
    assert [(e.user_id, e.session_ids, e.reason) for e in revoked] == [
        (uuid.UUID(account.user_id), (account.session_id,), "logout")
    ]


async def test_logout_leaves_other_sessions_alone(app_client: httpx.AsyncClient) -> None:
    phone = await register_and_login(app_client, device="phone")
    laptop = await login(app_client, phone.username, device="laptop")
    await app_client.post("/api/auth/logout", headers=bearer(phone.access_token))
    assert await me_status(app_client, phone) == 401
    assert await me_status(app_client, laptop) == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/auth/register", {"username": "u" * 33, "password": PASSWORD}, "username"),
        ("/api/auth/register", {"username": "ab", "password": PASSWORD}, "username"),
        ("/api/auth/register", {"username": "has space", "password": PASSWORD}, "username"),
        ("/api/auth/register", {"username": "valid_name", "password": "p" * 129}, "password"),
        ("/api/auth/register", {"username": "valid_name", "password": "short"}, "password"),
        (
            "/api/auth/register",
            {"username": "valid_name", "password": PASSWORD, "display_name": "d" * 101},
            "display_name",
        ),
        ("/api/auth/register", {"password": PASSWORD}, "username"),
        ("/api/auth/register", {"username": "valid_name", "password": PASSWORD, "role": "admin"}, "role"),
        ("/api/auth/login", {"username": "u" * 33, "password": PASSWORD}, "username"),
        ("/api/auth/login", {"username": "valid_name", "password": "p" * 129}, "password"),
        ("/api/auth/login", {"username": "valid_name", "password": PASSWORD, "device": "d" * 65}, "device"),
        ("/api/auth/login", {"username": "valid_name"}, "password"),
        ("/api/auth/refresh", {"refresh_token": "r" * 513}, "refresh_token"),
        ("/api/auth/refresh", {"refresh_token": 42}, "refresh_token"),
    ],
)
async def test_bad_fields_answer_422_naming_the_field(
    app_client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    response = await app_client.post(path, json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert error["details"]["field"] == field
    assert field in error["message"]


@pytest.mark.parametrize(
    "raw", [b'{"username": "abc", ', b"not json", b"\xff\xfe", b"", b"[]", b"null", b'"text"']
)
async def test_malformed_bodies_answer_in_the_envelope_never_500(
    app_client: httpx.AsyncClient, raw: bytes
) -> None:
    for path in ("/api/auth/register", "/api/auth/login", "/api/auth/refresh"):
        response = await app_client.post(path, content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code in {400, 422}, (path, raw, response.text)
        assert error_of(response)["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    ("policy", "still_working"),
    [
        ("single", {"laptop"}),
        ("single_per_device", {"phone-2", "laptop"}),
        ("multi", {"phone-1", "phone-2", "laptop"}),
    ],
)
async def test_login_policy_revokes_the_right_sessions(
    backend: Backend, policy: str, still_working: set[str]
) -> None:
    async with client_for(backend, LOGIN_POLICY=policy) as client:
        revoked = record_revocations(client)
        sessions = {"phone-1": await register_and_login(client, device="phone")}
        username = sessions["phone-1"].username
        sessions["phone-2"] = await login(client, username, device="phone")
        sessions["laptop"] = await login(client, username, device="laptop")
        working = {label for label, account in sessions.items() if await me_status(client, account) == 200}
        assert working == still_working
        revoked_ids = {sid for event in revoked for sid in event.session_ids}
        expected = {sessions[label].session_id for label in set(sessions) - still_working}
        assert revoked_ids == expected
        assert all(
            e.reason == "duplicate_login" and str(e.user_id) == sessions["laptop"].user_id for e in revoked
        )
        for label in set(sessions) - still_working:
            refresh = await client.post(
                "/api/auth/refresh", json={"refresh_token": sessions[label].refresh_token}
            )
            assert refresh.status_code == 401


async def test_default_device_counts_as_one_device(app_client: httpx.AsyncClient) -> None:
    first = await register_and_login(app_client)
    second = await login(app_client, first.username)
    assert await me_status(app_client, first) == 401
    assert await me_status(app_client, second) == 200


async def test_a_login_does_not_touch_other_users(app_client: httpx.AsyncClient) -> None:
    alice = await register_and_login(app_client, device="phone")
    await register_and_login(app_client, device="phone")
    assert await me_status(app_client, alice) == 200


async def test_admin_force_logout_revokes_every_session(
    app_client: httpx.AsyncClient, backend: Backend
) -> None:
    admin = await register_admin(app_client, backend.settings())
    phone = await register_and_login(app_client, device="phone")
    laptop = await login(app_client, phone.username, device="laptop")
    revoked = record_revocations(app_client)
    response = await app_client.post(
        f"/api/admin/users/{phone.user_id}/force-logout", headers=bearer(admin.access_token)
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"user_id": phone.user_id, "revoked_sessions": 2}
    assert await me_status(app_client, phone) == 401
    assert await me_status(app_client, laptop) == 401
    assert await me_status(app_client, admin) == 200
    assert len(revoked) == 1
    assert revoked[0].reason == "admin"
    assert revoked[0].all_sockets is True
    assert set(revoked[0].session_ids) == {phone.session_id, laptop.session_id}


async def test_force_logout_is_for_admins_only(app_client: httpx.AsyncClient) -> None:
    caller = await register_and_login(app_client)
    target = await register_and_login(app_client)
    response = await app_client.post(
        f"/api/admin/users/{target.user_id}/force-logout", headers=bearer(caller.access_token)
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "FORBIDDEN"
    assert await me_status(app_client, target) == 200
    anonymous = await app_client.post(f"/api/admin/users/{target.user_id}/force-logout")
    assert anonymous.status_code == 401


async def test_force_logout_of_an_unknown_user_is_not_found(
    app_client: httpx.AsyncClient, backend: Backend
) -> None:
    admin = await register_admin(app_client, backend.settings())
    response = await app_client.post(
        f"/api/admin/users/{uuid.uuid4()}/force-logout", headers=bearer(admin.access_token)
    )
    assert response.status_code == 404
    assert error_of(response)["code"] == "NOT_FOUND"


async def test_auth_attempts_are_rate_limited(backend: Backend) -> None:
    async with client_for(backend, RATE_LIMIT_AUTH="3/60") as client:
        statuses = [
            (
                await client.post("/api/auth/login", json={"username": name(), "password": PASSWORD})
            ).status_code
            for _ in range(3)
        ]
        assert statuses == [401, 401, 401]
        limited = await client.post("/api/auth/register", json={"username": name(), "password": PASSWORD})
        assert limited.status_code == 429
        assert error_of(limited)["code"] == "RATE_LIMITED"


async def test_rate_limit_can_be_switched_off(backend: Backend) -> None:
    async with client_for(backend, RATE_LIMIT_AUTH="1/60", RATE_LIMIT_ENABLED="false") as client:
        for _ in range(3):
            response = await client.post("/api/auth/login", json={"username": name(), "password": PASSWORD})
            assert response.status_code == 401


async def test_external_token_provisions_its_user_once(app_client: httpx.AsyncClient) -> None:
    subject = f"auth0|{uuid.uuid4().hex}"
    claims = {
        "sub": subject,
        "preferred_username": f"ext{uuid.uuid4().hex[:8]}",
        "name": "External Person",
        "exp": int(dt.datetime.now(dt.UTC).timestamp()) + 600,
    }
    token = jwt.encode(claims, TEST_SECRET, algorithm="HS256")
    first = await app_client.get("/api/auth/me", headers=bearer(token))
    second = await app_client.get("/api/auth/me", headers=bearer(token))
    assert first.status_code == second.status_code == 200
    assert first.json()["data"]["id"] == second.json()["data"]["id"]
    assert first.json()["data"]["username"] == claims["preferred_username"]
    assert first.json()["data"]["display_name"] == "External Person"
    assert first.json()["data"]["session_id"] is None


async def test_a_token_naming_an_unknown_session_is_revoked(app_client: httpx.AsyncClient) -> None:
    account = await register_and_login(app_client)
    token, _ = parley(app_client).context.tokens.issue(account.user_id, str(uuid.uuid4()))
    response = await app_client.get("/api/auth/me", headers=bearer(token))
    assert response.status_code == 401
    assert error_of(response)["code"] == "SESSION_REVOKED"


async def test_a_failing_query_answers_500_internal_without_sql(
    app_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await register_and_login(app_client)

    async def broken(_self: UserService, _user_id: str) -> None:
        raise OperationalError("SELECT users.password_hash FROM users", {}, Exception("server closed"))

    monkeypatch.setattr(UserService, "by_id", broken)
    response = await app_client.get("/api/auth/me", headers=bearer(account.access_token))
    assert response.status_code == 500
    assert error_of(response) == {"code": "INTERNAL", "message": "Internal server error", "details": None}
    assert "SELECT" not in response.text
    assert "password_hash" not in response.text
