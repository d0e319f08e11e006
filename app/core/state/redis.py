"""Redis state for several nodes: presence, socket counts, rate limits and signals.

`REDIS_URL` may name one Redis or a Redis Cluster (`redis+cluster://`). Every command touches one key
(or, like MGET and DEL over several, is split by slot with nothing to keep atomic across them), so no
key needs a hash tag; signals use classic pub/sub, which a cluster carries to every node.

After Redis restarts, or a network device resets idle connections, the pool holds connections that
are dead without knowing it. What meets one is retried on a fresh connection, within limits that
keep every command's effect single:

- a command that could not be sent (the connection was found dead, or could not be opened) is sent
  once more on a fresh connection, whatever it does: Redis never saw it;
- a read whose answer was lost is asked once more: asking again changes nothing.

A write whose answer was lost is not repeated (it may have been applied); its caller answers
UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import redis.exceptions
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.core.faults import is_stale_transport
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

# KEYS[1] set; ARGV ttl ms (0: none), members. A script, so a cluster runs it atomically too (a cluster
# client has no MULTI).
SET_ADD = """
redis.call('SADD', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
"""

T = TypeVar("T")


class CommandNotSent(redis.exceptions.ConnectionError):
    """A command never reached Redis: its connection could not be opened or was found dead."""


class SendGuard:
    """Reports every failure to send a command as `CommandNotSent`.

    uvloop refuses to write on a connection the peer reset while it sat in the pool with a
    `RuntimeError`, which redis-py neither retries nor counts as a connection failure.
    """

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if self._closed_by_peer():
            raise CommandNotSent("Redis closed this pooled connection (it restarted, or dropped it)")
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except redis.exceptions.ConnectionError as exc:
            raise CommandNotSent(str(exc)) from exc
        except RuntimeError as exc:
            if not is_stale_transport(exc):
                raise
            raise CommandNotSent(f"stale connection: {exc}") from exc

    def _closed_by_peer(self) -> bool:
        """True when the connection's reader already holds the end of the stream or its error.

        A Redis that stopped closed every connection in the pool; written to, such a connection
        still accepts the command and only the read fails, too late to know whether it ran.
        """
        reader: asyncio.StreamReader | None = getattr(self, "_reader", None)
        return reader is not None and (reader.at_eof() or reader.exception() is not None)


class GuardedConnection(SendGuard, Connection):
    pass


class GuardedSSLConnection(SendGuard, SSLConnection):
    pass


class GuardedUnixConnection(SendGuard, UnixDomainSocketConnection):
    pass


GUARDED: dict[type[Any], type[Any]] = {
    Connection: GuardedConnection,
    SSLConnection: GuardedSSLConnection,
    UnixDomainSocketConnection: GuardedUnixConnection,
}


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
"""`REDIS_URL` naming a Redis Cluster: any of its nodes, from which the client learns the others."""


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def connect(url: str) -> Redis | RedisCluster:
    """A client of `url`: a cluster client for a cluster, otherwise one whose commands are retried as
    the module docstring says (a cluster client retries on its own, following the slots' moves)."""
    if is_cluster_url(url):
        return RedisCluster.from_url(url.replace("+cluster://", "://", 1), socket_connect_timeout=2)
    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=2,
        health_check_interval=10,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(CommandNotSent,)),
    )
    pool = client.connection_pool
    pool.connection_class = GUARDED[pool.connection_class]
    return client


async def read_again_if_lost(read: Callable[[], Awaitable[T]]) -> T:
    """Run an idempotent read; if its answer was lost on the way back, ask once more."""
    try:
        return await read()
    except CommandNotSent:
        raise  # already tried on a fresh connection
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return await read()


def _raw(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStateBackend(StateBackend):
    def __init__(self, url: str, prefix: str = "parley:") -> None:
        self.prefix = prefix
        self.redis = connect(url)
        self._token_bucket = self.redis.register_script(TOKEN_BUCKET)
        self._hash_incr = self.redis.register_script(HASH_INCR)
        self._set_add = self.redis.register_script(SET_ADD)
        self._handlers: defaultdict[str, list[SignalHandler]] = defaultdict(list)
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    def _k(self, key: str) -> str:
        return self.prefix + key

    async def get(self, key: str) -> bytes | None:
        return _raw(await read_again_if_lost(lambda: self.redis.get(self._k(key))))

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
        names = [self._k(k) for k in keys]
        client = self.redis
        if isinstance(client, RedisCluster):  # keys of many slots: one MGET per slot, in parallel
            values = await read_again_if_lost(lambda: client.mget_nonatomic(names))
        else:
            values = await read_again_if_lost(lambda: self.redis.mget(names))
        return [_raw(v) for v in values]

    async def expire(self, key: str, ttl: float) -> None:
        await self.redis.pexpire(self._k(key), int(ttl * 1000))

    async def set_add(self, key: str, *members: str, ttl: float | None = None) -> None:
        ttl_ms = int(ttl * 1000) if ttl is not None else 0
        await self._set_add(keys=[self._k(key)], args=[ttl_ms, *members])

    async def set_remove(self, key: str, *members: str) -> None:
        await self.redis.srem(self._k(key), *members)

    async def set_members(self, key: str) -> set[str]:
        members = await read_again_if_lost(lambda: self.redis.smembers(self._k(key)))
        return {_text(m) for m in members}

    async def hash_incr(self, key: str, field: str, delta: int) -> int:
        return int(await self._hash_incr(keys=[self._k(key)], args=[field, delta]))

    async def hash_get_all(self, key: str) -> dict[str, int]:
        table = await read_again_if_lost(lambda: self.redis.hgetall(self._k(key)))
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
        found = await read_again_if_lost(lambda: self._scan(self._k(pattern)))
        return [key.removeprefix(self.prefix) for key in found]

    async def _scan(self, match: str) -> list[str]:
        return [_text(key) async for key in self.redis.scan_iter(match=match, count=500)]

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
        await read_again_if_lost(self.redis.ping)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()
