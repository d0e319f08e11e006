"""Redis state for several nodes: presence, socket counts, rate limits and signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from app.core.state.backend import SignalHandler, StateBackend

logger = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV capacity, refill/s, ttl ms. Redis' own clock keeps nodes consistent.
TOKEN_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return tostring(wait)
"""

HASH_INCR = """
local value = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if value <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return value
"""


def _raw(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStateBackend(StateBackend):
    def __init__(self, url: str, prefix: str = "parley:") -> None:
        self.prefix = prefix
        self.redis: Redis = Redis.from_url(url, socket_connect_timeout=2, health_check_interval=10)
        self._token_bucket = self.redis.register_script(TOKEN_BUCKET)
        self._hash_incr = self.redis.register_script(HASH_INCR)
        self._handlers: defaultdict[str, list[SignalHandler]] = defaultdict(list)
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    def _k(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> bytes | None:
        return _raw(await self.redis.get(self._k(key)))

    async def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.redis.set(self._k(key), value, px=int(ttl * 1000) if ttl is not None else None)

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None) -> bool:
        px = int(ttl * 1000) if ttl is not None else None
        return bool(await self.redis.set(self._k(key), value, px=px, nx=True))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self.redis.delete(*(self._k(k) for k in keys)))

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = await self.redis.mget([self._k(k) for k in keys])
        return [_raw(v) for v in values]

    async def expire(self, key: str, ttl: float) -> None:
        await self.redis.pexpire(self._k(key), int(ttl * 1000))

    async def set_add(self, key: str, *members: str, ttl: float | None = None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self._k(key), *members)
            if ttl is not None:
                pipe.pexpire(self._k(key), int(ttl * 1000))
            await pipe.execute()

    async def set_remove(self, key: str, *members: str) -> None:
        await self.redis.srem(self._k(key), *members)

    async def set_members(self, key: str) -> set[str]:
        members = await self.redis.smembers(self._k(key))
        return {_text(m) for m in members}

    async def hash_incr(self, key: str, field: str, delta: int) -> int:
        return int(await self._hash_incr(keys=[self._k(key)], args=[field, delta]))

    async def hash_get_all(self, key: str) -> dict[str, int]:
        table = await self.redis.hgetall(self._k(key))
        return {_text(k): int(v) for k, v in table.items()}

    async def hash_delete(self, key: str, *fields: str) -> None:
        if fields:
            await self.redis.hdel(self._k(key), *fields)

    async def take_token_or_wait(
        self, key: str, capacity: int, refill_per_second: float, ttl: float
    ) -> float:
        wait = await self._token_bucket(
            keys=[self._k(key)], args=[capacity, refill_per_second, max(1, int(ttl * 1000))]
        )
        return float(wait)

    async def keys(self, pattern: str) -> list[str]:
        found = [_text(key) async for key in self.redis.scan_iter(match=self._k(pattern), count=500)]
        return [key.removeprefix(self.prefix) for key in found]

    async def publish(self, channel: str, message: bytes) -> None:
        await self.redis.publish(self._k(channel), message)

    async def subscribe(self, channel: str, handler: SignalHandler) -> None:
        first = channel not in self._handlers
        self._handlers[channel].append(handler)
        if self._pubsub is None:
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        if first:
            await self._pubsub.subscribe(self._k(channel))
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="parley-state-signals")

    async def _listen(self) -> None:
        """Deliver signals; on a lost connection, resubscribe and carry on once Redis is back."""
        assert self._pubsub is not None
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - any connection failure: wait, resubscribe, go on
                logger.warning("state signal listener lost Redis; retrying")
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await self._pubsub.subscribe(*(self._k(c) for c in self._handlers))
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"].decode().removeprefix(self.prefix)
            for handler in list(self._handlers.get(channel, ())):
                try:
                    await handler(message["data"])
                except Exception:
                    logger.exception("signal handler failed on channel %s", channel)

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()
