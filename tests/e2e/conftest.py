"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.support.backends import BACKENDS, Backend
from tests.support.clients import RecordingClient
from tests.support.server import ServerProcess


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, backend_factory: Callable[[str], Backend]) -> Backend:
    """Per test module, so a module's server processes serve all its tests on one backend."""
    return backend_factory(request.param)


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """REST against the test module's `server` fixture (the one server process it shares)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
async def clients() -> AsyncIterator[Callable[[], RecordingClient]]:
    """Makes RecordingClients for one test and closes them all after it."""
    made: list[RecordingClient] = []

    def make() -> RecordingClient:
        made.append(RecordingClient())
        return made[-1]

    yield make
    for client in made:
        await client.close()
