"""The whole app served by a real uvicorn server in the test's own process and event loop.

Tests reach into the running app (its engine, its providers) while real clients talk to it over
loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn

from app.config.settings import Settings
from app.core.app_factory import ParleyApp
from app.main import create_app
from tests.support.clients import Account, RecordingClient
from tests.support.server import free_port


@contextlib.asynccontextmanager
async def serve_in_process(settings: Settings) -> AsyncIterator[tuple[ParleyApp, str]]:
    """The app of `settings` and its URL, served until the block is left."""
    parley = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(parley.asgi, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the in-process server stopped during start-up"
        await asyncio.sleep(0.01)
    try:
        yield parley, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


async def make_group(http: httpx.AsyncClient, owner: Account, *others: Account, title: str = "group") -> str:
    response = await http.post(
        "/api/conversations",
        json={"kind": "group", "title": title, "participant_ids": [o.user_id for o in others]},
        headers=auth(owner),
    )
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["data"]["id"]
    return conversation_id


async def connect(url: str, account: Account) -> RecordingClient:
    """A socket of `account`, past `session:ready`."""
    client = RecordingClient()
    await client.connect(url, account.access_token)
    await client.wait_for("session:ready")
    return client
