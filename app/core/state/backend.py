"""The one interface both state backends implement.

Values are bytes; callers encode with msgspec. Every key is namespaced by the backend's prefix, so
several deployments (or test runs) can share one Redis without seeing each other's keys.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable

SignalHandler = Callable[[bytes], Awaitable[None]]


class StateBackend(abc.ABC):
    """Key/value with TTL, sets, counters, token buckets and pub/sub signals."""

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abc.abstractmethod
    async def put(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        """Set only if the key does not exist; True if this call set it (atomic on every node).

        With `ttl` None the key stays until deleted.
        """

    @abc.abstractmethod
    async def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""

    @abc.abstractmethod
    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    @abc.abstractmethod
    async def expire(self, key: str, ttl: float) -> None: ...

    @abc.abstractmethod
    async def set_add(self, key: str, *members: str, ttl: float | None = None) -> None: ...

    @abc.abstractmethod
    async def set_remove(self, key: str, *members: str) -> None: ...

    @abc.abstractmethod
    async def set_members(self, key: str) -> set[str]: ...

    @abc.abstractmethod
    async def hash_incr(self, key: str, field: str, delta: int) -> int:
        """Add `delta` to a hash field; a field that drops to zero or below is removed."""

    @abc.abstractmethod
    async def hash_get_all(self, key: str) -> dict[str, int]: ...

    @abc.abstractmethod
    async def hash_delete(self, key: str, *fields: str) -> None: ...

    async def take_token(self, key: str, capacity: int, refill_per_second: float, ttl: float) -> bool:
        """Take one token from a bucket refilled continuously; False when it is empty."""
        return await self.take_token_or_wait(key, capacity, refill_per_second, ttl) == 0.0

    @abc.abstractmethod
    async def take_token_or_wait(
        self, key: str, capacity: int, refill_per_second: float, ttl: float
    ) -> float:
        """Take one token (0.0); when the bucket is empty, the seconds until its next token instead."""

    @abc.abstractmethod
    async def keys(self, pattern: str) -> list[str]:
        """Keys (without the prefix) matching a glob pattern; for maintenance sweeps only."""

    @abc.abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, channel: str, handler: SignalHandler) -> None:
        """Call `handler` for each message published on `channel`, on every node."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the backend cannot be reached."""

    @abc.abstractmethod
    async def close(self) -> None: ...
