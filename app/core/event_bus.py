"""In-process domain events: one module announces, others act, neither imports the other."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

E = TypeVar("E")
Listener = Callable[[Any], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._listeners: defaultdict[type[Any], list[Listener]] = defaultdict(list)

    def subscribe(self, event_type: type[E], listener: Callable[[E], Awaitable[None]]) -> None:
        self._listeners[event_type].append(listener)

    async def publish(self, event: object) -> None:
        """Run every listener of the event's type; a failing listener is logged, the rest still run."""
        for listener in list(self._listeners[type(event)]):
            try:
                await listener(event)
            except Exception:
                logger.exception(
                    "listener %s failed on %s", getattr(listener, "__qualname__", listener), event
                )
