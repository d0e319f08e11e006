"""The Socket.IO gateway end to end: handshake, rooms and their hooks, acks and errors.

One server process per backend serves the whole module (the sample `game:` module included); each
test makes its own users, so no test sees another's sockets or rooms.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import socketio

from tests.support.backends import Backend
from tests.support.clients import (
    RecordingClient,
    connect_ready,
    external_token,
    login,
    register_and_login,
    sign_token,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

GAME = "tests.support.game:create_asgi"
TRANSPORTS = ("websocket", "polling")
ENV = {"SOCKET_DEFAULT_ROOMS": "user:{userId},broadcast:all,device:{sessionId}", "LOG_LEVEL": "INFO"}


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    node = ServerProcess(backend.env(**ENV), tmp_path_factory.mktemp("gateway") / "server.log", GAME)
    yield node.start()
    node.stop()


def secret(server: ServerProcess) -> str:
    return server.env["JWT_SECRET"]


async def refusal(
    make: Callable[[], RecordingClient],
    server: ServerProcess,
    token: str | None,
    transport: str,
    **kwargs: Any,
) -> dict[str, Any]:
    """Connect, expect the handshake to be refused, and return `connect_error`'s data."""
    client = make()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(server.url, token, transport, **kwargs)
    error = client.connect_error
    assert isinstance(error, dict), error
    assert error["data"] == {"code": error["code"], "message": error["message"]}
    assert not client.events.get("session:ready")
    return error["data"]  # type: ignore[no-any-return]


# --- handshake -----------------------------------------------------------------------------------

BAD_TOKENS: dict[str, Callable[[str, str], str | None]] = {
    "missing": lambda _user, _key: None,
    "malformed": lambda _user, _key: "not.a-jwt",
    "bad-signature": lambda user, _key: sign_token({"sub": user}, "another-secret-another-secret-0123456789"),
    "hs512": lambda user, key: sign_token({"sub": user}, key, "HS512"),
    "alg-none": lambda user, _key: sign_token({"sub": user}, "", "none"),
    "no-subject": lambda _user, key: sign_token({}, key),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_a_bad_token_is_refused_unauthorized(
    server: ServerProcess, clients: Any, transport: str, kind: str
) -> None:
    token = BAD_TOKENS[kind](str(uuid.uuid4()), secret(server))
    error = await refusal(clients, server, token, transport)
    assert error["code"] == "UNAUTHORIZED", error


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_expired_token_is_refused_token_expired(
    server: ServerProcess, clients: Any, transport: str
) -> None:
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    token = sign_token({"sub": str(uuid.uuid4()), "iat": long_ago, "exp": long_ago}, secret(server))
    assert (await refusal(clients, server, token, transport))["code"] == "TOKEN_EXPIRED"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_logged_out_session_is_refused_session_revoked(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any, transport: str
) -> None:
    account = await register_and_login(http)
    response = await http.post(
        "/api/auth/logout", headers={"Authorization": f"Bearer {account.access_token}"}
    )
    assert response.status_code == 200, response.text
    error = await refusal(clients, server, account.access_token, transport)
    assert error["code"] == "SESSION_REVOKED"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_authorization_header_is_accepted(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any, transport: str
) -> None:
    account = await register_and_login(http)
    client = clients()
    await client.connect(
        server.url, None, transport, headers={"Authorization": f"Bearer {account.access_token}"}
    )
    ready = await client.wait_for("session:ready")
    assert ready["user"]["id"] == account.user_id
    assert ready["session_id"] == account.session_id


async def test_an_external_token_provisions_its_unseen_subject(server: ServerProcess, clients: Any) -> None:
    subject = str(uuid.uuid4())
    name = f"ext{uuid.uuid4().hex[:8]}"
    token = sign_token({"sub": subject, "preferred_username": name}, secret(server))
    first = await connect_ready(clients, server, token)
    ready = first.events["session:ready"][0]
    assert ready["user"]["username"] == name
    assert ready["session_id"] is None
    assert f"user:{ready['user']['id']}" in ready["rooms"]
    assert not any(room.startswith(("session:", "device:")) for room in ready["rooms"])
    second = await connect_ready(clients, server, token)
    assert second.events["session:ready"][0]["user"] == ready["user"], "provisioned once, then found"


async def test_issuer_and_audience_are_enforced(
    backend: Backend, start_server: Callable[..., ServerProcess], clients: Any
) -> None:
    node = start_server(backend, JWT_ISSUER="https://issuer.test", JWT_AUDIENCE="parley-test")
    key, subject = secret(node), str(uuid.uuid4())
    wrong_issuer = sign_token({"sub": subject, "iss": "https://evil.test", "aud": "parley-test"}, key)
    wrong_audience = sign_token({"sub": subject, "iss": "https://issuer.test", "aud": "other"}, key)
    neither = sign_token({"sub": subject}, key)
    for token in (wrong_issuer, wrong_audience, neither):
        assert (await refusal(clients, node, token, "websocket"))["code"] == "UNAUTHORIZED"
    right = sign_token({"sub": subject, "iss": "https://issuer.test", "aud": "parley-test"}, key)
    client = await connect_ready(clients, node, right)
    assert client.sio.connected


# --- rooms -------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_session_ready_lists_default_and_session_rooms(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any, transport: str
) -> None:
    account = await register_and_login(http)
    client = await connect_ready(clients, server, account.access_token, transport)
    ready = client.events["session:ready"][0]
    assert sorted(ready["rooms"]) == sorted(
        [
            f"user:{account.user_id}",
            "broadcast:all",
            f"device:{account.session_id}",
            f"session:{account.session_id}",
        ]
    )
    assert ready["user"] == {
        "id": account.user_id,
        "username": account.username,
        "display_name": ready["user"]["display_name"],
    }
    assert ready["session_id"] == account.session_id
    server_time = dt.datetime.fromisoformat(ready["server_time"])
    assert abs((dt.datetime.now(dt.UTC) - server_time).total_seconds()) < 30
    assert ready["limits"]["max_payload_bytes"] == 65536
    assert ready["limits"]["rate_limits"]["default"] == {"capacity": 30, "per_seconds": 1}
    assert isinstance(ready["announcements"], list)


async def test_room_hooks_admit_owners_and_refuse_others(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    alice, bob = await register_and_login(http), await register_and_login(http)
    nobody = f"session:{uuid.uuid4()}"
    client = await connect_ready(clients, server, alice.access_token)
    answers = {
        room: await client.call("room:join", {"room": room})
        for room in (
            f"user:{alice.user_id}",
            f"user:{bob.user_id}",
            f"session:{alice.session_id}",
            f"session:{bob.session_id}",
            nobody,
            "broadcast:news",
            "secret:vault",
            "game:chess-open",
            f"game:{alice.user_id}",
            f"game:{bob.user_id}",
            "game:chess-closed",
        )
    }
    codes = {
        room: answer["data"]["room"] if answer["ok"] else answer["error"]["code"]
        for room, answer in answers.items()
    }
    assert codes == {
        f"user:{alice.user_id}": f"user:{alice.user_id}",
        f"user:{bob.user_id}": "FORBIDDEN",
        f"session:{alice.session_id}": f"session:{alice.session_id}",
        f"session:{bob.session_id}": "FORBIDDEN",
        nobody: "FORBIDDEN",
        "broadcast:news": "broadcast:news",
        "secret:vault": "FORBIDDEN",
        "game:chess-open": "game:chess-open",
        f"game:{alice.user_id}": f"game:{alice.user_id}",
        f"game:{bob.user_id}": "FORBIDDEN",
        "game:chess-closed": "FORBIDDEN",
    }


async def test_joined_rooms_receive_and_left_rooms_do_not(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    alice, bob = await register_and_login(http), await register_and_login(http)
    speaker = await connect_ready(clients, server, alice.access_token)
    listener = await connect_ready(clients, server, bob.access_token, "polling")
    assert (await listener.call("room:join", {"room": "game:table-open"}))["ok"]
    assert (await speaker.call("game:shout", {"room": "game:table-open", "text": "one"}))["ok"]
    assert (await listener.wait_for("game:news"))["text"] == "one"
    assert (await listener.call("room:leave", {"room": "game:table-open"})) == {
        "ok": True,
        "data": {"room": "game:table-open"},
    }
    assert (await speaker.call("game:shout", {"room": "game:table-open", "text": "two"}))["ok"]
    assert (await speaker.call("game:shout", {"room": f"user:{bob.user_id}", "text": "three"}))["ok"]
    assert (await listener.wait_for("game:news", index=1))["text"] == "three", "`two` never arrived"


@pytest.mark.parametrize(
    "room",
    ["nocolon", "Upper:case", ":empty", "user:", "user:a b", "user:" + "x" * 200, 42, None],
)
async def test_malformed_room_names_are_validation_errors(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any, room: Any
) -> None:
    client = await connect_ready(clients, server, external_token(server))
    for event in ("room:join", "room:leave"):
        answer = await client.call(event, {"room": room})
        assert answer["ok"] is False
        assert answer["error"]["code"] == "VALIDATION_ERROR"
        assert answer["error"]["details"]["field"] == "room"


# --- acks and errors --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_event_is_answered_by_ack_or_exception_event(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any, transport: str
) -> None:
    client = await connect_ready(clients, server, external_token(server), transport)
    unknown = await client.call("no:such_event", {"x": 1})
    assert unknown["ok"] is False
    assert unknown["error"]["code"] == "NOT_FOUND"
    await client.sio.emit("no:such_event", {"x": 1})
    assert await client.wait_for("exception") == {
        "event": "no:such_event",
        "code": "NOT_FOUND",
        "message": unknown["error"]["message"],
    }
    await client.sio.emit("room:join", {"room": "secret:vault"})
    refused = await client.wait_for("exception", index=1)
    assert (refused["event"], refused["code"]) == ("room:join", "FORBIDDEN")
    await client.sio.emit("room:join", {"room": "broadcast:fine"})
    await client.sio.emit("room:join", {"rooom": "broadcast:x"})
    invalid = await client.wait_for("exception", index=2)
    assert (invalid["event"], invalid["code"]) == ("room:join", "VALIDATION_ERROR")
    assert len(client.events["exception"]) == 3, "a successful event without an ack sends nothing"


async def test_failures_of_optimistic_events_ask_for_a_rollback(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    client = await connect_ready(clients, server, external_token(server))
    assert await client.call("game:move", {"room": "game:a-open"}) == {
        "ok": True,
        "data": {"room": "game:a-open"},
    }
    refused = await client.call("game:move", {"room": "game:someone-else"})
    assert (refused["error"]["code"], refused["action"]) == ("FORBIDDEN", "ROLLBACK")
    invalid = await client.call("game:move", {"room": 1})
    assert (invalid["error"]["code"], invalid["action"]) == ("VALIDATION_ERROR", "ROLLBACK")
    assert "action" not in await client.call("room:join", {"room": "secret:x"}), "not optimistic: no rollback"


async def test_validation_names_the_field_before_the_handler_runs(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    client = await connect_ready(clients, server, external_token(server))
    cases: list[tuple[Any, str]] = [
        ({"room": 5}, "room"),
        ({}, "room"),
        ({"room": "broadcast:a", "extra": 1}, "extra"),
        ("a string", "payload"),
        ([1, 2], "payload"),
        (None, "payload"),
    ]
    for payload, field in cases:
        answer = await client.call("room:join", payload)
        assert answer["ok"] is False, payload
        assert answer["error"]["code"] == "VALIDATION_ERROR", payload
        assert answer["error"]["details"]["field"] == field, (payload, answer)
    hold = await client.call("game:hold", {"key": 7})
    assert hold["error"]["details"]["field"] == "key", "the handler would have blocked forever"
    too_many = await client.sio.call("room:join", ({"room": "broadcast:a"}, {"room": "broadcast:b"}))
    assert too_many["error"] == {
        "code": "VALIDATION_ERROR",
        "message": too_many["error"]["message"],
        "details": {"field": "payload"},
    }
    extras: list[Any] = [{}, (None,), ({"x": 1}, {"y": 2})]
    for extra in extras:
        refused = await client.sio.call("game:boom", extra)
        assert refused["error"] == {
            "code": "VALIDATION_ERROR",
            "message": "payload: game:boom takes no payload; emit it with none",
            "details": {"field": "payload"},
        }, "refused before the handler, which would answer INTERNAL"


async def test_an_unexpected_error_is_internal_and_logged_once(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    account = await register_and_login(http)
    client = await connect_ready(clients, server, account.access_token)
    answer = await client.call("game:boom")
    assert answer == {"ok": False, "error": {"code": "INTERNAL", "message": "Internal server error"}}
    await client.sio.emit("game:boom")
    assert await client.wait_for("exception") == {
        "event": "game:boom",
        "code": "INTERNAL",
        "message": "Internal server error",
    }
    assert (await client.call("room:join", {"room": "broadcast:after"}))["ok"], "the socket still works"
    sid = client.sio.get_sid()
    failures = [line for line in server.log().splitlines() if "handler of game:boom failed" in line]
    mine = [line for line in failures if f"sid={sid}" in line]
    assert len(mine) == 2, failures
    assert all(f"user_id={account.user_id}" in line for line in mine)


async def test_no_error_answer_carries_internals(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    client = await connect_ready(clients, server, external_token(server))
    answers = [
        await client.call("game:boom"),
        await client.call("room:join", {"room": 5}),
        await client.call("room:join", {"room": "secret:x"}),
        await client.call("nope", None),
        await client.call("auth:refresh", {"token": "x.y.z"}),
    ]
    for answer in answers:
        text = str(answer).lower()
        for leak in ("traceback", "select", "no_such_table", "sqlalchemy", "asyncpg", "sqlite", 'file "'):
            assert leak not in text, answer


async def test_auth_refresh_rejects_a_token_of_another_user(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    alice, bob = await register_and_login(http), await register_and_login(http)
    client = await connect_ready(clients, server, alice.access_token)
    answer = await client.call("auth:refresh", {"token": bob.access_token})
    assert answer["ok"] is False
    assert answer["error"]["code"] == "FORBIDDEN"
    again = await login(http, alice.username, device="other")
    answer = await client.call("auth:refresh", {"token": again.access_token})
    assert answer["ok"] is False
    assert answer["error"]["code"] == "FORBIDDEN", "another session of the same user"
    assert (await client.call("auth:refresh", {"token": "garbage"}))["error"]["code"] == "UNAUTHORIZED"
    joined = await client.call("room:join", {"room": f"user:{alice.user_id}"})
    assert joined["ok"], "still alice"
    assert (await client.call("room:join", {"room": f"user:{bob.user_id}"}))["error"]["code"] == "FORBIDDEN"


async def test_auth_refresh_with_a_fresh_token_of_the_same_session_is_accepted(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    account = await register_and_login(http)
    client = await connect_ready(clients, server, account.access_token)
    refreshed = await http.post("/api/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    answer = await client.call("auth:refresh", {"token": refreshed.json()["data"]["access_token"]})
    assert answer["ok"] is True
    assert dt.datetime.fromisoformat(answer["data"]["expires_at"]) > dt.datetime.now(dt.UTC)
