"""Announcements end to end: live on every node, and in `session:ready` for whoever connects later.

On PostgreSQL + Redis two server processes form one cluster; on SQLite + in process there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.backends import Backend
from tests.support.clients import RecordingClient, register_admin, register_and_login
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def nodes(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    logs = tmp_path_factory.mktemp("announcements")
    count = 2 if backend.redis_url else 1
    started = [ServerProcess(backend.env(), logs / f"node-{index}.log").start() for index in range(count)]
    yield started
    for node in started:
        node.stop()


async def test_announcement_reaches_every_node_and_later_logins(
    backend: Backend, nodes: list[ServerProcess], clients: Callable[[], RecordingClient]
) -> None:
    first, last = nodes[0], nodes[-1]
    async with httpx.AsyncClient(base_url=first.url, timeout=10) as http:
        token = (await register_admin(http, backend.settings())).access_token
        listeners = []
        for node in nodes:
            account = await register_and_login(http)
            listener = clients()
            await listener.connect(node.url, account.access_token)
            await listener.wait_for("session:ready")
            listeners.append(listener)

        body = {"title": "Maintenance", "body": "Back in a minute", "metadata": {"severity": "info"}}
        response = await http.post(
            "/api/admin/announcements", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.text
        made = response.json()["data"]

        for listener in listeners:
            assert await listener.wait_for("system:announcement") == made

        newcomer = await register_and_login(http)
    late = clients()
    await late.connect(last.url, newcomer.access_token)
    ready = await late.wait_for("session:ready")
    assert ready["announcements"][0] == made
    assert late.events["system:announcement"] == []


async def test_rejected_announcement_is_not_broadcast(
    backend: Backend, nodes: list[ServerProcess], clients: Callable[[], RecordingClient]
) -> None:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=10) as http:
        token = (await register_admin(http, backend.settings())).access_token
        account = await register_and_login(http)
        listener = clients()
        await listener.connect(nodes[-1].url, account.access_token)
        await listener.wait_for("session:ready")
        headers = {"Authorization": f"Bearer {token}"}
        bad = await http.post("/api/admin/announcements", json={"body": "untitled"}, headers=headers)
        assert bad.status_code == 422
        assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
        good = await http.post("/api/admin/announcements", json={"title": "t", "body": "b"}, headers=headers)
        assert good.status_code == 201
    assert (await listener.wait_for("system:announcement"))["id"] == good.json()["data"]["id"]
    assert len(listener.events["system:announcement"]) == 1


async def test_returning_user_gets_what_was_announced_while_away(
    backend: Backend, nodes: list[ServerProcess], clients: Callable[[], RecordingClient]
) -> None:
    async with httpx.AsyncClient(base_url=nodes[0].url, timeout=10) as http:
        headers = {"Authorization": f"Bearer {(await register_admin(http, backend.settings())).access_token}"}
        watcher_account, returning = await register_and_login(http), await register_and_login(http)
        made = await http.post(
            "/api/conversations",
            json={"kind": "direct", "participant_ids": [returning.user_id]},
            headers={"Authorization": f"Bearer {watcher_account.access_token}"},
        )
        assert made.status_code == 201, made.text
        watcher = clients()
        await watcher.connect(nodes[0].url, watcher_account.access_token)
        await watcher.wait_for("session:ready")
        subscribed = await watcher.call("presence:subscribe", {"user_ids": [returning.user_id]})
        assert subscribed["ok"] is True, subscribed

        first_visit = clients()
        await first_visit.connect(nodes[-1].url, returning.access_token)
        await first_visit.wait_for("session:ready")
        seen = await http.post(
            "/api/admin/announcements", json={"title": "seen", "body": "live"}, headers=headers
        )
        assert (await first_visit.wait_for("system:announcement"))["id"] == seen.json()["data"]["id"]
        await first_visit.close()
        assert (await watcher.wait_for("user:status", index=1))["status"] == "offline"

        missed = await http.post(
            "/api/admin/announcements", json={"title": "missed", "body": "away"}, headers=headers
        )
        assert missed.status_code == 201
    second_visit = clients()
    await second_visit.connect(nodes[-1].url, returning.access_token)
    ready = await second_visit.wait_for("session:ready")
    assert [item["id"] for item in ready["announcements"]] == [missed.json()["data"]["id"]]
