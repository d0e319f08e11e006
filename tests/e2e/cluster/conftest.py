"""The cluster tests run on the scaled-out backend alone: several nodes, and a Redis and a PostgreSQL to
lose, exist only there."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.backends import Backend


@pytest.fixture(scope="module", params=["postgres"])
def backend(request: pytest.FixtureRequest, backend_factory: Callable[[str], Backend]) -> Backend:
    return backend_factory(request.param)
