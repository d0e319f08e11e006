"""The state backend contract, run on both implementations: in process and Redis.

A "node" is another instance on the same store (for Redis: another connection with the same prefix;
in process there is only one node, so it is the same instance). Expiry is awaited by polling with a
bounded deadline, never by sleeping for a fixed time.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.core.state import MemoryStateBackend, RedisStateBackend, StateBackend
from tests.support.backends import REDIS_HOST, REDIS_PORT, RUN_ID, require_services
from tests.support.proxy import TcpProxy

REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    """Poll `check` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)


@dataclass
class Store:
    """Hands out backends of one kind; all Redis ones are closed and their keys removed afterwards."""

    kind: str
    prefix: str = field(default_factory=lambda: f"parley-test-{RUN_ID}:state-{uuid.uuid4().hex[:8]}:")
    opened: list[StateBackend] = field(default_factory=list)

    def node(self) -> StateBackend:
        """Another node on the same store (the same instance in process)."""
        if self.kind == "memory":
            if not self.opened:
                self.opened.append(MemoryStateBackend())
            return self.opened[0]
        backend = RedisStateBackend(REDIS_URL, prefix=self.prefix)
        self.opened.append(backend)
        return backend

    def isolated(self) -> StateBackend:
        """A backend of another deployment: its own prefix (its own process, in memory)."""
        if self.kind == "memory":
            backend: StateBackend = MemoryStateBackend()
        else:
            backend = RedisStateBackend(REDIS_URL, prefix=f"{self.prefix}other-{uuid.uuid4().hex[:6]}:")
        self.opened.append(backend)
        return backend

    async def close(self) -> None:
        for backend in self.opened:
            if isinstance(backend, RedisStateBackend):
                keys = [key async for key in backend.redis.scan_iter(match=f"{self.prefix}*")]
                if keys:
                    await backend.redis.delete(*keys)
            await backend.close()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "redis":
        require_services()
    opened = Store(request.param)
    yield opened
    await opened.close()


@pytest.fixture
def state(store: Store) -> StateBackend:
    return store.node()


async def subscribed(backend: StateBackend, channel: str) -> None:
    """Wait until Redis has registered the subscription (SUBSCRIBE is not acknowledged synchronously)."""
    if isinstance(backend, RedisStateBackend):
        redis = backend.redis

        async def registered() -> bool:
            counts = await redis.pubsub_numsub(backend.prefix + channel)
            return bool(counts and counts[0][1] > 0)

        await eventually(registered)


async def test_put_get_delete(state: StateBackend) -> None:
    await state.put("a", b"1")
    await state.put("b", b"2")
    assert await state.get("a") == b"1"
    assert await state.get_many(["a", "missing", "b"]) == [b"1", None, b"2"]
    assert await state.get_many([]) == []
    assert await state.delete("a", "missing") == 1
    assert await state.get("a") is None
    assert await state.delete() == 0


async def test_ttl_expiry(state: StateBackend) -> None:
    await state.put("short", b"x", ttl=0.05)
    await state.put("kept", b"y")
    assert await state.get("short") == b"x"
    await eventually(lambda: _is_none(state.get("short")))
    assert await state.get("kept") == b"y"
    assert await state.get_many(["short", "kept"]) == [None, b"y"]


async def test_expire_shortens_a_lifetime(state: StateBackend) -> None:
    await state.put("k", b"v")
    await state.expire("k", 0.05)
    await eventually(lambda: _is_none(state.get("k")))
    await state.expire("absent", 1.0)
    assert await state.get("absent") is None


async def test_put_replaces_value_and_ttl(state: StateBackend) -> None:
    await state.put("k", b"old", ttl=0.05)
    await state.put("k", b"new")
    await state.put("probe", b"", ttl=0.05)
    await eventually(lambda: _is_none(state.get("probe")))
    assert await state.get("k") == b"new"


async def test_set_if_absent(state: StateBackend) -> None:
    assert await state.set_if_absent("lock", b"first", ttl=0.05) is True
    assert await state.set_if_absent("lock", b"second", ttl=0.05) is False
    assert await state.get("lock") == b"first"
    await eventually(lambda: _is_none(state.get("lock")))
    assert await state.set_if_absent("lock", b"third", ttl=5) is True


async def test_set_if_absent_without_ttl_keeps_the_key(state: StateBackend) -> None:
    assert await state.set_if_absent("kept", b"first", ttl=None) is True
    await state.put("probe", b"", ttl=0.05)
    await eventually(lambda: _is_none(state.get("probe")))
    assert await state.get("kept") == b"first"
    assert await state.set_if_absent("kept", b"second", ttl=None) is False


async def test_set_if_absent_is_atomic_across_concurrent_nodes(store: Store) -> None:
    nodes = [store.node() for _ in range(8)]
    results = await asyncio.gather(
        *(nodes[i % len(nodes)].set_if_absent("claim", str(i).encode(), ttl=5) for i in range(40))
    )
    assert results.count(True) == 1
    assert await nodes[0].get("claim") == str(results.index(True)).encode()


async def test_sets(state: StateBackend) -> None:
    await state.set_add("s", "a", "b")
    await state.set_add("s", "b", "c")
    assert await state.set_members("s") == {"a", "b", "c"}
    await state.set_remove("s", "a", "missing")
    assert await state.set_members("s") == {"b", "c"}
    await state.set_remove("s", "b", "c")
    assert await state.set_members("s") == set()
    assert await state.keys("s") == []
    assert await state.set_members("never") == set()


async def test_set_with_ttl_expires(state: StateBackend) -> None:
    await state.set_add("s", "a", ttl=0.05)
    await eventually(lambda: _is_empty(state.set_members("s")))
    await state.set_add("s", "b")
    await state.put("probe", b"", ttl=0.05)
    await eventually(lambda: _is_none(state.get("probe")))
    assert await state.set_members("s") == {"b"}


async def test_hash_incr_adds_and_drops_fields_at_zero(state: StateBackend) -> None:
    assert await state.hash_incr("h", "x", 1) == 1
    assert await state.hash_incr("h", "x", 2) == 3
    assert await state.hash_incr("h", "y", 5) == 5
    assert await state.hash_get_all("h") == {"x": 3, "y": 5}
    assert await state.hash_incr("h", "x", -3) == 0
    assert await state.hash_get_all("h") == {"y": 5}
    assert await state.hash_incr("h", "z", -1) == -1
    assert await state.hash_get_all("h") == {"y": 5}
    await state.hash_delete("h", "y", "missing")
    assert await state.hash_get_all("h") == {}
    assert await state.keys("h") == []


async def test_hash_incr_from_concurrent_nodes_adds_up(store: Store) -> None:
    nodes = [store.node() for _ in range(4)]
    await asyncio.gather(*(node.hash_incr("counts", "f", 1) for node in nodes for _ in range(25)))
    assert await nodes[0].hash_get_all("counts") == {"f": 100}


async def test_token_bucket_refuses_past_capacity_then_refills(state: StateBackend) -> None:
    results = [await state.take_token("bucket", 3, 20.0, ttl=5) for _ in range(4)]
    assert results == [True, True, True, False]
    assert await state.take_token("other-bucket", 3, 20.0, ttl=5) is True
    await eventually(lambda: state.take_token("bucket", 3, 20.0, ttl=5))


async def test_token_bucket_does_not_refill_early(state: StateBackend) -> None:
    for _ in range(2):
        assert await state.take_token("slow", 2, 0.01, ttl=60)
    assert [await state.take_token("slow", 2, 0.01, ttl=60) for _ in range(5)] == [False] * 5


async def test_an_empty_bucket_tells_how_long_until_its_next_token(state: StateBackend) -> None:
    assert [await state.take_token_or_wait("waits", 2, 0.5, ttl=60) for _ in range(2)] == [0.0, 0.0]
    wait = await state.take_token_or_wait("waits", 2, 0.5, ttl=60)
    assert 1.9 < wait <= 2.0, "one token at 0.5/s is two seconds away"
    assert await state.take_token("waits", 2, 0.5, ttl=60) is False


async def test_token_bucket_is_shared_by_nodes(store: Store) -> None:
    nodes = [store.node() for _ in range(3)]
    results = await asyncio.gather(*(node.take_token("shared", 5, 0.01, ttl=60) for node in nodes * 4))
    assert results.count(True) == 5


async def test_publish_reaches_subscribers_of_the_channel_only(store: Store) -> None:
    subscriber, publisher = store.node(), store.node()
    received: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    async def on_news(message: bytes) -> None:
        await received.put(("news", message))

    async def on_other(message: bytes) -> None:
        await received.put(("other", message))

    await subscriber.subscribe("news", on_news)
    await subscriber.subscribe("other", on_other)
    await subscribed(subscriber, "news")
    await subscribed(subscriber, "other")
    await publisher.publish("news", b"hello")
    await publisher.publish("other", b"world")
    got = {await asyncio.wait_for(received.get(), 3), await asyncio.wait_for(received.get(), 3)}
    assert got == {("news", b"hello"), ("other", b"world")}
    assert received.empty()


async def test_a_failing_handler_does_not_stop_the_others(store: Store) -> None:
    subscriber, publisher = store.node(), store.node()
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def broken(_message: bytes) -> None:
        raise RuntimeError("handler bug")

    await subscriber.subscribe("signals", broken)
    await subscriber.subscribe("signals", received.put)
    await subscribed(subscriber, "signals")
    await publisher.publish("signals", b"one")
    await publisher.publish("signals", b"two")
    assert await asyncio.wait_for(received.get(), 3) == b"one"
    assert await asyncio.wait_for(received.get(), 3) == b"two"


async def test_keys_are_isolated_by_prefix(store: Store) -> None:
    ours, theirs = store.isolated(), store.isolated()
    await ours.put("session:1", b"a")
    await ours.set_add("session:set", "x")
    await ours.put("presence:1", b"b")
    assert sorted(await ours.keys("session:*")) == ["session:1", "session:set"]
    assert await theirs.keys("*") == []
    assert await theirs.get("session:1") is None
    await theirs.put("session:1", b"theirs")
    assert await ours.get("session:1") == b"a"


async def test_signals_are_isolated_by_prefix(store: Store) -> None:
    ours, theirs = store.isolated(), store.isolated()
    received: asyncio.Queue[bytes] = asyncio.Queue()
    await ours.subscribe("signals", received.put)
    await subscribed(ours, "signals")
    await theirs.publish("signals", b"not for us")
    await ours.publish("signals", b"ours")
    assert await asyncio.wait_for(received.get(), 3) == b"ours"
    assert received.empty()


async def test_ping(state: StateBackend) -> None:
    await state.ping()


async def test_redis_ping_fails_when_redis_is_unreachable() -> None:
    backend = RedisStateBackend("redis://127.0.0.1:1/0", prefix="unreachable:")
    try:
        with pytest.raises(RedisConnectionError):
            await backend.ping()
    finally:
        await backend.close()


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[RedisStateBackend, TcpProxy]]:
    """A Redis backend reaching Redis through a proxy the test controls."""
    require_services()
    proxy = TcpProxy(REDIS_HOST, REDIS_PORT).start()
    store = Store("redis")
    backend = RedisStateBackend(f"redis://127.0.0.1:{proxy.port}/0", prefix=store.prefix)
    yield backend, proxy
    await backend.close()
    proxy.close()
    store.node()  # straight to Redis, to remove the keys
    await store.close()


async def test_a_pooled_connection_reset_while_idle_is_replaced_for_reads_and_writes(
    proxied: tuple[RedisStateBackend, TcpProxy],
) -> None:
    backend, proxy = proxied
    await backend.put("k", b"v")
    proxy.cut()
    proxy.restore()
    assert await backend.get("k") == b"v"
    proxy.cut()
    proxy.restore()
    assert await backend.hash_incr("h", "f", 1) == 1, "a write Redis never saw is sent on a fresh connection"


async def test_a_lost_answer_is_asked_again_for_a_read_never_for_a_write(
    proxied: tuple[RedisStateBackend, TcpProxy],
) -> None:
    backend, proxy = proxied
    assert await backend.hash_incr("h", "f", 1) == 1
    proxy.lose_next_answer()
    assert await backend.hash_get_all("h") == {"f": 1}
    proxy.lose_next_answer()
    with pytest.raises(RedisConnectionError):
        await backend.hash_incr("h", "f", 1)
    assert await backend.hash_get_all("h") == {"f": 2}, "the write was applied once, not repeated"


async def test_with_redis_away_a_command_fails_at_once_after_one_more_try(
    proxied: tuple[RedisStateBackend, TcpProxy],
) -> None:
    backend, proxy = proxied
    await backend.put("k", b"v")
    proxy.cut()
    started = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await backend.get("k")
    assert time.monotonic() - started < 1.0
    proxy.restore()


async def _is_none(value: Awaitable[bytes | None]) -> bool:
    return await value is None


async def _is_empty(value: Awaitable[set[str]]) -> bool:
    return not await value
