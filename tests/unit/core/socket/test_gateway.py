"""Which handlers may wait: an `await`, `async for` or `async with` in a handler's own body."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from app.core.socket.gateway import may_wait


async def answers_at_once(payload: Any) -> Any:
    return {"echo": payload}


async def awaits() -> None:
    await asyncio.sleep(0)


async def iterates(items: Any) -> None:
    async for _ in items:
        pass


async def enters() -> None:
    async with contextlib.AsyncExitStack():
        pass


def test_a_handler_without_await_never_waits_and_the_others_may() -> None:
    assert not may_wait(answers_at_once)
    assert may_wait(awaits)
    assert may_wait(iterates)
    assert may_wait(enters)
