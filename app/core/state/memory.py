"""In-process state for the embedded default: one node, nothing survives a restart."""

from __future__ import annotations

import fnmatch
import logging
import time
from collections import defaultdict
from typing import Any

from app.core.state.backend import SignalHandler, StateBackend

logger = logging.getLogger(__name__)


class MemoryStateBackend(StateBackend):
    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._expires: dict[str, float] = {}
        self._handlers: defaultdict[str, list[SignalHandler]] = defaultdict(list)

    def _alive(self, key: str) -> bool:
        deadline = self._expires.get(key)
        if deadline is not None and deadline <= time.monotonic():
            self._data.pop(key, None)
            self._expires.pop(key, None)
        return key in self._data

    def _touch(self, key: str, ttl: float | None) -> None:
        if ttl is None:
            self._expires.pop(key, None)
        else:
            self._expires[key] = time.monotonic() + ttl

    async def get(self, key: str) -> bytes | None:
        return self._data[key] if self._alive(key) else None

    async def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._data[key] = value
        self._touch(key, ttl)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        if self._alive(key):
            return False
        await self.put(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        existed = 0
        for key in keys:
            if self._alive(key):
                existed += 1
            self._data.pop(key, None)
            self._expires.pop(key, None)
        return existed

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        return [self._data[key] if self._alive(key) else None for key in keys]

    async def expire(self, key: str, ttl: float) -> None:
        if self._alive(key):
            self._touch(key, ttl)

    async def set_add(self, key: str, *members: str, ttl: float | None = None) -> None:
        if not self._alive(key):
            self._data[key] = set()
        self._data[key].update(members)
        if ttl is not None:
            self._touch(key, ttl)

    async def set_remove(self, key: str, *members: str) -> None:
        if self._alive(key):
            self._data[key].difference_update(members)
            if not self._data[key]:
                await self.delete(key)

    async def set_members(self, key: str) -> set[str]:
        return set(self._data[key]) if self._alive(key) else set()

    async def hash_incr(self, key: str, field: str, delta: int) -> int:
        if not self._alive(key):
            self._data[key] = {}
        table: dict[str, int] = self._data[key]
        value = table.get(field, 0) + delta
        if value > 0:
            table[field] = value
        else:
            table.pop(field, None)
            if not table:
                await self.delete(key)
        return value

    async def hash_get_all(self, key: str) -> dict[str, int]:
        return dict(self._data[key]) if self._alive(key) else {}

    async def hash_delete(self, key: str, *fields: str) -> None:
        if self._alive(key):
            for field in fields:
                self._data[key].pop(field, None)
            if not self._data[key]:
                await self.delete(key)

    async def take_token_or_wait(
        self, key: str, capacity: int, refill_per_second: float, ttl: float
    ) -> float:
        now = time.monotonic()
        tokens, stamp = self._data[key] if self._alive(key) else (float(capacity), now)
        tokens = min(float(capacity), tokens + (now - stamp) * refill_per_second)
        allowed = tokens >= 1.0
        self._data[key] = (tokens - 1.0 if allowed else tokens, now)
        self._touch(key, ttl)
        return 0.0 if allowed else (1.0 - tokens) / refill_per_second

    async def keys(self, pattern: str) -> list[str]:
        return [key for key in list(self._data) if fnmatch.fnmatchcase(key, pattern) and self._alive(key)]

    async def publish(self, channel: str, message: bytes) -> None:
        for handler in list(self._handlers[channel]):
            try:
                await handler(message)
            except Exception:
                logger.exception("signal handler failed on channel %s", channel)

    async def subscribe(self, channel: str, handler: SignalHandler) -> None:
        self._handlers[channel].append(handler)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()
