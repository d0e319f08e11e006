"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.clients import RecordingClient


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
