"""A token that expires while its socket is connected: `force_logout` (`token_expired`), unless
`auth:refresh` brought a new token of the same user and session first.

The server issues 3-second access tokens; tests wait on `force_logout`, never on the clock. The
refreshed tokens are signed here, so that their expiry is surely later than the first one's (a token
issued within the same second would expire with it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.support.backends import Backend
from tests.support.clients import connect_ready, register_and_login
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

TTL = 3
TRANSPORTS = ("websocket", "polling")


@pytest.fixture(scope="module")
def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    node = ServerProcess(backend.env(ACCESS_TOKEN_TTL=TTL), tmp_path_factory.mktemp("expiry") / "server.log")
    yield node.start()
    node.stop()


async def test_an_expiring_token_ends_its_sockets_with_force_logout(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    account = await register_and_login(http)
    sockets = [
        await connect_ready(clients, server, account.access_token, transport) for transport in TRANSPORTS
    ]
    for client in sockets:
        logout = await client.wait_for("force_logout", timeout=TTL + 5)
        assert logout == {"reason": "token_expired", "message": logout["message"]}
        await client.disconnected.wait()


async def test_auth_refresh_before_expiry_keeps_the_socket_and_a_refused_one_changes_nothing(
    server: ServerProcess, http: httpx.AsyncClient, clients: Any
) -> None:
    account = await register_and_login(http)
    kept = await connect_ready(clients, server, account.access_token)
    control = await connect_ready(clients, server, account.access_token, "polling")
    refused = await connect_ready(clients, server, account.access_token)
    first_expiry = jwt.decode(account.access_token, options={"verify_signature": False})["exp"]
    key = server.env["JWT_SECRET"]
    stranger = jwt.encode({"sub": str(uuid.uuid4()), "exp": first_expiry + 60}, key)
    assert (await refused.call("auth:refresh", {"token": stranger}))["error"]["code"] == "FORBIDDEN"
    later = {"sub": account.user_id, "sid": account.session_id, "exp": first_expiry + TTL}
    answer = await kept.call("auth:refresh", {"token": jwt.encode(later, key)})
    assert answer["ok"] is True, answer
    assert answer["data"]["expires_at"].startswith(
        dt.datetime.fromtimestamp(first_expiry + TTL, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    )
    for expired in (control, refused):
        assert (await expired.wait_for("force_logout", timeout=TTL + 5))["reason"] == "token_expired", (
            "the other user's later expiry was not adopted"
        )
    assert kept.sio.connected, "the refreshed socket outlived the first token"
    assert (await kept.call("room:join", {"room": f"user:{account.user_id}"}))["ok"]
    assert (await kept.wait_for("force_logout", timeout=TTL + 5))["reason"] == "token_expired", (
        "the new token's expiry is enforced too"
    )
