"""The example module from outside (examples/game, installed as the package `parley-game`), served by
a real server that finds it through the `parley.modules` entry point named in PARLEY_MODULES.

`parley db upgrade` applies its migration branch; a python-socketio client joins a game table
through the module's room hook, scores with acks and sees the others' scores; the module's REST route
answers the standings; its table holds the rows, on SQLite and on PostgreSQL; its events are in
/ws-docs, /ws-docs/spec and `parley docs types`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from advanced_alchemy.types import GUID
from sqlalchemy import Integer, text

from app.core.db.engine import create_engine
from tests.support.backends import Backend, _create_pg_database, _drop_pg_database
from tests.support.clients import Account, RecordingClient, connect_ready, register_and_login
from tests.support.forkserver import PARLEY, run_forked
from tests.support.server import ServerProcess

pytestmark = pytest.mark.e2e

MODULES = {"PARLEY_MODULES": "game"}
GAME_EVENTS = ("game:score", "game:scored", "game:shout", "game:news", "game:move")


def parley(backend: Backend, *args: str) -> subprocess.CompletedProcess[str]:
    return run_forked([PARLEY, *args], backend.env(**MODULES), Path.cwd(), timeout=60)


@pytest.fixture(scope="module")
def game_backend(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """A database of its own, migrated by `parley db upgrade` with the module: the shared one stays
    without the module's branch, which servers started without PARLEY_MODULES could not place."""
    if backend.name == "sqlite":
        path = tmp_path_factory.mktemp("game") / "game.db"
        yield dataclasses.replace(backend, database_url=f"sqlite+aiosqlite:///{path}")
        return
    name = f"parley_game_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_pg_database(name))
    try:
        yield dataclasses.replace(backend, database_url=f"{backend.database_url.rsplit('/', 1)[0]}/{name}")
    finally:
        asyncio.run(_drop_pg_database(name))


@pytest.fixture(scope="module")
def server(game_backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    upgraded = parley(game_backend, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    node = ServerProcess(game_backend.env(**MODULES), tmp_path_factory.mktemp("game") / "server.log")
    yield node.start()
    node.stop()


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


async def scores_in_table(backend: Backend, room: str) -> list[tuple[str, int]]:
    """The rows of the module's table for `room`, read straight from the database."""
    engine = create_engine(backend.settings())
    try:
        async with engine.connect() as connection:
            query = text("SELECT user_id, points FROM game_scores WHERE room = :room").columns(
                user_id=GUID(length=16), points=Integer()
            )
            rows = await connection.execute(query, {"room": room})
            return sorted((str(user_id), points) for user_id, points in rows)
    finally:
        await engine.dispose()


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.access_token}"}


@pytest.fixture
async def players(http: httpx.AsyncClient) -> tuple[Account, Account]:
    """Two new users, logged in."""
    return await register_and_login(http), await register_and_login(http)


async def test_players_join_through_the_hook_score_with_acks_and_read_the_standings(
    game_backend: Backend,
    server: ServerProcess,
    http: httpx.AsyncClient,
    clients: Callable[[], RecordingClient],
    players: tuple[Account, Account],
) -> None:
    alice, bob = players
    table = f"{uuid.uuid4().hex[:8]}-open"
    room = f"game:{table}"
    player = await connect_ready(clients, server, alice.access_token)
    watcher = await connect_ready(clients, server, bob.access_token, "polling")
    assert await player.call("room:join", {"room": room}) == {"ok": True, "data": {"room": room}}
    assert await watcher.call("room:join", {"room": room}) == {"ok": True, "data": {"room": room}}

    first = await player.call("game:score", {"room": room, "points": 3})
    assert first == {"ok": True, "data": {"room": room, "user_id": alice.user_id, "points": 3, "total": 3}}
    assert await watcher.wait_for("game:scored") == first["data"]
    second = await player.call("game:score", {"room": room, "points": 4})
    assert second["data"]["total"] == 7
    assert (await watcher.call("game:score", {"room": room, "points": 5}))["data"]["total"] == 5

    standings = await http.get(f"/api/game/tables/{table}/scores", headers=bearer(bob))
    assert standings.status_code == 200, standings.text
    assert standings.json()["data"] == {
        "room": room,
        "standings": [{"user_id": alice.user_id, "total": 7}, {"user_id": bob.user_id, "total": 5}],
    }
    assert await scores_in_table(game_backend, room) == sorted(
        [(alice.user_id, 3), (alice.user_id, 4), (bob.user_id, 5)]
    )


async def test_refusals_name_their_reason_and_write_nothing(
    game_backend: Backend,
    server: ServerProcess,
    http: httpx.AsyncClient,
    clients: Callable[[], RecordingClient],
    players: tuple[Account, Account],
) -> None:
    alice, bob = players
    player = await connect_ready(clients, server, alice.access_token)
    own, others = f"game:{alice.user_id}", f"game:{bob.user_id}"

    refused = await player.call("room:join", {"room": others})
    assert refused["ok"] is False
    assert refused["error"]["code"] == "FORBIDDEN"
    not_joined = await player.call("game:score", {"room": own, "points": 1})
    assert not_joined["error"]["code"] == "FORBIDDEN"
    assert not_joined["error"]["details"] == {"field": "room"}
    assert (await player.call("room:join", {"room": own}))["ok"]
    for points in (0, 101, "3"):
        invalid = await player.call("game:score", {"room": own, "points": points})
        assert invalid["error"]["code"] == "VALIDATION_ERROR", points
        assert invalid["error"]["details"]["field"] == "points", points
    assert await scores_in_table(game_backend, own) == []

    assert (
        await http.get(f"/api/game/tables/{bob.user_id}/scores", headers=bearer(alice))
    ).status_code == 403
    assert (await http.get(f"/api/game/tables/{alice.user_id}/scores")).status_code == 401
    mine = await http.get(f"/api/game/tables/{alice.user_id}/scores", headers=bearer(alice))
    assert mine.json()["data"] == {"room": own, "standings": []}


async def test_its_events_are_documented_in_the_page_the_spec_and_the_types(
    game_backend: Backend, http: httpx.AsyncClient
) -> None:
    page = (await http.get("/ws-docs")).text
    spec: dict[str, Any] = (await http.get("/ws-docs/spec")).json()
    types = parley(game_backend, "docs", "types")
    assert types.returncode == 0, types.stderr
    for event in GAME_EVENTS:
        assert event in page, event
        assert event in spec["channels"], event
        assert f'"{event}"' in types.stdout, event
    assert spec["channels"]["game:score"]["publish"]["x-room-required"] == "game:{table}"
    points = spec["components"]["schemas"]["ScoreIn"]["properties"]["points"]
    assert (points["minimum"], points["maximum"]) == (1, 100)
