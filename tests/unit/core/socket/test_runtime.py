"""An event whose handler never waits is dispatched in the reader: to its end with no task, or, if
it has to wait after all, on in a task from where it stopped; either way in a context of its own."""

from __future__ import annotations

import asyncio
import contextvars

from app.core.socket.runtime import run_until_it_waits

seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="reader")


async def test_work_that_never_waits_ends_here_and_its_context_stays_its_own() -> None:
    done: list[str] = []

    async def work() -> None:
        seen.set("handler")
        done.append(seen.get())

    assert run_until_it_waits(work()) is None
    assert done == ["handler"]
    assert seen.get() == "reader"


async def test_work_that_has_to_wait_goes_on_in_a_task_in_its_own_context() -> None:
    slot = asyncio.Semaphore(0)
    done: list[str] = []

    async def work() -> None:
        seen.set("handler")
        await slot.acquire()
        done.append(seen.get())

    rest = run_until_it_waits(work())
    assert rest is not None
    task = asyncio.create_task(rest[0], context=rest[1])
    await asyncio.sleep(0)
    assert done == []
    slot.release()
    await asyncio.wait_for(task, 1)

    assert done == ["handler"]
    assert seen.get() == "reader"
