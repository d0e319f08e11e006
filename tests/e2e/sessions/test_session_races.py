"""Session operations racing each other, against real server processes.

Logins on one device at the same instant, refreshes of one token at once, and refreshes racing the
end of their session (admin force-logout, logout). On PostgreSQL + Redis the requests are spread
over two nodes; on SQLite one node serves them all. Each outcome is checked the way a client would
find out: with every token the racing requests handed out, old and new.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.backends import Backend
from tests.support.clients import Account, login, register_admin, register_directly
from tests.support.server import ServerProcess, running

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)  # the trials' figures, shown with --log-cli-level=INFO

TRIALS = 5
SESSIONS = 10
REFRESH_LIMIT = 20


@pytest.fixture(scope="module")
def nodes(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Two nodes on PostgreSQL + Redis, one on SQLite."""
    logs = tmp_path_factory.mktemp("session-races")
    count = 2 if backend.redis_url else 1
    with running([ServerProcess(backend.env(), logs / f"node-{i}.log") for i in range(count)]) as made:
        yield made


@dataclass
class Spread:
    """REST clients of every node; request `i` goes to node `i % n`."""

    clients: list[httpx.AsyncClient]

    def at(self, index: int) -> httpx.AsyncClient:
        return self.clients[index % len(self.clients)]

    async def me(self, index: int, access_token: str) -> int:
        response = await self.at(index).get("/api/auth/me", headers=bearer(access_token))
        return response.status_code

    async def refresh(self, index: int, refresh_token: str) -> httpx.Response:
        return await self.at(index).post("/api/auth/refresh", json={"refresh_token": refresh_token})

    async def alive(self, access_tokens: list[str], refresh_tokens: list[str]) -> bool:
        """Whether any of these tokens still works, asked of every node in turn."""
        checks: list[Any] = [self.me(i, token) for i, token in enumerate(access_tokens)]
        checks += [self.refresh(i + 1, token) for i, token in enumerate(refresh_tokens)]
        answers = await asyncio.gather(*checks)
        return any((a if isinstance(a, int) else a.status_code) == 200 for a in answers)


@pytest.fixture
async def spread(nodes: list[ServerProcess]) -> AsyncIterator[Spread]:
    clients = [httpx.AsyncClient(base_url=node.url, timeout=30) for node in nodes]
    yield Spread(clients)
    for client in clients:
        await client.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_logins_at_the_same_instant_on_one_device_leave_one_session(
    backend: Backend, spread: Spread
) -> None:
    first = await register_directly(spread.at(0), backend.settings(), device="phone")
    laptop = await login(spread.at(1), first.username, device="laptop")
    racing = await asyncio.gather(*(login(spread.at(i), first.username, device="phone") for i in range(8)))
    statuses = [await spread.me(i, account.access_token) for i, account in enumerate([first, *racing])]
    assert sorted(statuses) == [200] + [401] * 8, statuses
    assert await spread.me(0, laptop.access_token) == 200, "a session on another device is left alone"


async def test_of_refreshes_of_one_token_at_once_exactly_one_wins_and_its_session_lives_on(
    backend: Backend, spread: Spread
) -> None:
    account = await register_directly(spread.at(0), backend.settings())
    responses = await asyncio.gather(*(spread.refresh(i, account.refresh_token) for i in range(8)))
    assert sorted(r.status_code for r in responses) == [200] + [401] * 7
    (winner,) = [r.json()["data"] for r in responses if r.status_code == 200]
    assert await spread.me(1, winner["access_token"]) == 200
    assert (await spread.refresh(0, winner["refresh_token"])).status_code == 200


@dataclass
class Chain:
    """One session as a client refreshing it over and over keeps it: the tokens it holds last."""

    session_id: str
    access_token: str
    refresh_token: str
    issued_access: list[str]


async def keep_refreshing(spread: Spread, index: int, chain: Chain, underway: asyncio.Event) -> None:
    """Refresh `chain` with each new refresh token until one is refused (at most REFRESH_LIMIT times)."""
    for attempt in range(REFRESH_LIMIT):
        answer = await spread.refresh(index + attempt, chain.refresh_token)
        underway.set()
        if answer.status_code != 200:
            assert answer.status_code == 401, answer.text
            return
        pair = answer.json()["data"]
        chain.access_token, chain.refresh_token = pair["access_token"], pair["refresh_token"]
        chain.issued_access.append(pair["access_token"])


async def race(spread: Spread, admin: Account, username: str, end: str) -> tuple[int, int]:
    """Open SESSIONS sessions and keep refreshing each while they are ended (one admin force-logout,
    or each session's logout), sent once the refreshing is under way; answer how many of the
    sessions still work afterwards, by any token they were handed, and how many refreshes succeeded."""
    sessions = list(
        await asyncio.gather(*(login(spread.at(i), username, device=f"d{i}") for i in range(SESSIONS)))
    )
    chains = [Chain(s.session_id, s.access_token, s.refresh_token, [s.access_token]) for s in sessions]
    underway = asyncio.Event()

    async def finish() -> None:
        await underway.wait()
        if end == "force_logout":
            path = f"/api/admin/users/{sessions[0].user_id}/force-logout"
            answers = [await spread.at(1).post(path, headers=bearer(admin.access_token))]
        else:
            logouts = [
                spread.at(i + 1).post("/api/auth/logout", headers=bearer(s.access_token))
                for i, s in enumerate(sessions)
            ]
            answers = list(await asyncio.gather(*logouts))
        assert all(answer.status_code in {200, 401} for answer in answers), [a.text for a in answers]

    await asyncio.gather(*(keep_refreshing(spread, i, c, underway) for i, c in enumerate(chains)), finish())
    survivors = 0
    for chain in chains:
        survivors += await spread.alive(chain.issued_access, [chain.refresh_token])
    return survivors, sum(len(chain.issued_access) - 1 for chain in chains)


@pytest.mark.parametrize("end", ["force_logout", "logout"])
async def test_refreshes_racing_the_end_of_their_sessions_never_bring_one_back(
    backend: Backend, spread: Spread, end: str
) -> None:
    admin = await register_admin(spread.at(0), backend.settings())
    owner = await register_directly(spread.at(0), backend.settings())
    outcomes = [await race(spread, admin, owner.username, end) for _ in range(TRIALS)]
    survivors = [survived for survived, _ in outcomes]
    logger.info(
        "refreshes racing %s on %s: %d trials x %d sessions, survivors per trial %s, refreshes granted %s",
        end,
        backend.name,
        TRIALS,
        SESSIONS,
        survivors,
        [granted for _, granted in outcomes],
    )
    assert survivors == [0] * TRIALS
    if end == "force_logout":
        again = await spread.at(0).post(
            f"/api/admin/users/{owner.user_id}/force-logout", headers=bearer(admin.access_token)
        )
        assert again.json()["data"]["revoked_sessions"] == 0
