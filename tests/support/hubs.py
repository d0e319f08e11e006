"""A stand-in for SocketHub where a test drives a module's logic without sockets."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import msgspec

from app.core.socket.decorators import ServerEvent


class RecordingHub:
    """Stands in for SocketHub: keeps what would have been emitted, per room."""

    def __init__(self) -> None:
        self.sent: defaultdict[str, list[Any]] = defaultdict(list)
        self._arrived = asyncio.Condition()

    async def emit(self, event: ServerEvent, payload: msgspec.Struct, *, room: str, **_: Any) -> None:
        assert isinstance(payload, event.payload)
        async with self._arrived:
            self.sent[room].append(payload)
            self._arrived.notify_all()

    async def wait_for(self, room: str, count: int, timeout: float = 5.0) -> list[Any]:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.sent[room]) >= count), timeout)
        return self.sent[room]
