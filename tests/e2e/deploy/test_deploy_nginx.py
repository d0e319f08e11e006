"""Several nodes behind nginx, configured from `deploy/nginx.conf`, with default clients.

The session's deployment (`deployment` in `tests/e2e/conftest.py`): node `a` runs one process, node
`b` runs `--workers 2`, both on PostgreSQL + Redis (several nodes need Redis). A session's requests
must reach its node through nginx, then its worker through the node's router. Both nodes trust
nginx's address only (TRUSTED_PROXIES), so per-address limits count the client behind nginx, and
nobody else can choose the address they are counted under.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.clients import PASSWORD
from tests.support.crowd import chat_crowd
from tests.support.js_clients import require_js_clients
from tests.support.nginx import AUTH_ATTEMPTS, Nginx, from_address
from tests.support.server import ParleyServe

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

JS_CLIENTS = 100
PY_CLIENTS = 20
GROUP = 6
TIMEOUT = 60.0


@pytest.fixture
async def http(nginx: Nginx) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=nginx.url, timeout=10) as client:
        yield client


async def test_default_clients_through_nginx_connect_upgrade_and_chat_across_nodes(
    nginx: Nginx, deployed_nodes: list[ParleyServe], http: httpx.AsyncClient
) -> None:
    require_js_clients()
    report = await chat_crowd(
        nginx.url, http, deployed_nodes[0].env["JWT_SECRET"], JS_CLIENTS, PY_CLIENTS, GROUP, TIMEOUT
    )
    logger.info(report.summary("nginx, two nodes"))
    report.assert_all_connected_upgraded_and_chatted()
    assert {sid.split(".")[0] for sid in report.sids} == {"a", "b"}
    assert {sid.split(".")[1] for sid in report.sids if sid.startswith("b.")} == {"0", "1"}, "b's two workers"


async def test_sessions_of_no_live_node_get_400_through_nginx(http: httpx.AsyncClient) -> None:
    for sid in ("a.AAAAAAAAAAAAAAAAAAAA", "b.1.AAAAAAAAAAAAAAAAAAAA", "c.AAAAAAAAAAAAAAAAAAAA"):
        answer = await http.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=2)
        assert answer.status_code == 400, (sid, answer.text)
        assert "Invalid session" in answer.text


async def login_status(client: httpx.AsyncClient, username: str, **headers: str) -> int:
    body = {"username": username, "password": PASSWORD}
    return (await client.post("/api/auth/login", json=body, headers=headers)).status_code


async def test_login_limits_count_the_client_behind_nginx_not_nginx(
    nginx: Nginx, deployed_nodes: list[ParleyServe]
) -> None:
    """RATE_LIMIT_AUTH is per client address: behind nginx each client has its own bucket, and a
    client that reaches a node directly cannot pick its address with X-Forwarded-For."""
    async with from_address("127.0.0.4", nginx.url) as registrar:
        username = f"u{id(registrar):x}"
        registered = await registrar.post(
            "/api/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
    async with from_address("127.0.0.2", nginx.url) as first, from_address("127.0.0.3", nginx.url) as second:
        assert [await login_status(first, username) for _ in range(AUTH_ATTEMPTS)] == [200] * AUTH_ATTEMPTS
        assert await login_status(first, username) == 429
        assert await login_status(second, username) == 200, "another address behind nginx has its own bucket"
        assert await login_status(first, username, **{"X-Forwarded-For": "198.51.100.7"}) == 429
    async with from_address("127.0.0.2", deployed_nodes[0].url) as direct:
        spoofed = await login_status(direct, username, **{"X-Forwarded-For": "198.51.100.8"})
    assert spoofed == 429, "a client that is no trusted proxy chose the address it is counted under"
