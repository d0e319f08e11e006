"""Callbacks due at given times, on one event-loop timer for all of them.

Every connection waits for something: its next Engine.IO ping, its token's expiry. A `call_later`
each costs a timer handle and the loop's timer object, with the callback's closure, about 600 bytes
for as long as the connection lasts. Here a pending call is one small entry in a heap, and the loop
holds one timer, for the earliest.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Pending:
    """One scheduled call of `TimerHeap`."""

    __slots__ = ("arg", "callback", "when")

    def __init__(self, when: float, callback: Callable[[Any], object], arg: Any) -> None:
        self.when = when
        self.callback: Callable[[Any], object] | None = callback
        self.arg = arg

    def __lt__(self, other: Pending) -> bool:
        return self.when < other.when


class TimerHeap:
    """`call_later(delay, callback, arg)` for many callers, on one loop timer.

    Cancelled entries stay until they are due or until they are half of the heap, which is then
    rebuilt without them, so many cancelled far-off calls (tokens of closed connections) do not pile up.
    """

    def __init__(self) -> None:
        self._heap: list[Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at = 0.0
        self._cancelled = 0

    def __len__(self) -> int:
        """Calls still to run (cancelled ones not counted)."""
        return sum(1 for entry in self._heap if entry.callback is not None)

    @property
    def held(self) -> int:
        """Entries in the heap, cancelled ones not yet dropped included."""
        return len(self._heap)

    def call_later(self, delay: float, callback: Callable[[Any], object], arg: Any) -> Pending:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a server started again in the same process)
            self._heap, self._loop, self._timer, self._cancelled = [], loop, None, 0
        entry = Pending(loop.time() + delay, callback, arg)
        heapq.heappush(self._heap, entry)
        if self._heap[0] is entry:
            self._arm(loop)
        return entry

    def cancel(self, entry: Pending) -> None:
        """Forget the call at once (its callback and argument); its entry leaves the heap later."""
        if entry.callback is None:
            return
        entry.callback = entry.arg = None
        self._cancelled += 1
        if self._cancelled > 32 and self._cancelled * 2 > len(self._heap):
            self._heap = [pending for pending in self._heap if pending.callback is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        when = self._heap[0].when
        if self._timer is not None:
            if self._armed_at <= when:
                return
            self._timer.cancel()
        self._armed_at = when
        self._timer = loop.call_at(when, self._run)

    def _run(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        while self._heap and self._heap[0].when <= now:
            entry = heapq.heappop(self._heap)
            callback, arg = entry.callback, entry.arg
            if callback is None:
                self._cancelled -= 1
                continue
            entry.callback = entry.arg = None
            try:
                callback(arg)
            except Exception:
                logger.exception("error in a timed call")
        while self._heap and self._heap[0].callback is None:
            heapq.heappop(self._heap)
            self._cancelled -= 1
        if self._heap:
            self._arm(loop)
