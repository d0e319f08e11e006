"""`TimerHeap`: calls run in the order they are due, on one loop timer; a cancelled one never runs and
lets go of its argument at once; cancelled entries do not pile up."""

from __future__ import annotations

import asyncio
import gc
import weakref

from app.core.socket.timers import TimerHeap


async def test_calls_run_in_the_order_they_are_due() -> None:
    timers = TimerHeap()
    ran: list[str] = []
    done = asyncio.Event()

    def record(name: str) -> None:
        ran.append(name)
        if len(ran) == 3:
            done.set()

    timers.call_later(0.03, record, "third")
    timers.call_later(0.01, record, "first")
    timers.call_later(0.02, record, "second")
    assert len(timers) == 3

    await asyncio.wait_for(done.wait(), 5)

    assert ran == ["first", "second", "third"]
    assert len(timers) == 0


async def test_a_cancelled_call_never_runs_and_lets_go_of_its_argument() -> None:
    class Target:
        pass

    timers = TimerHeap()
    ran: list[object] = []
    done = asyncio.Event()
    target = Target()
    gone = weakref.ref(target)
    cancelled = timers.call_later(0.01, ran.append, target)
    timers.call_later(0.02, lambda _arg: done.set(), None)

    timers.cancel(cancelled)
    del target
    gc.collect()

    assert gone() is None
    await asyncio.wait_for(done.wait(), 5)
    assert ran == []


async def test_cancelled_far_off_calls_do_not_pile_up() -> None:
    timers = TimerHeap()
    pending = [timers.call_later(3600, print, index) for index in range(200)]

    for entry in pending[:150]:
        timers.cancel(entry)

    assert len(timers) == 50
    assert timers.held < 100, "the heap was rebuilt without the cancelled entries"
