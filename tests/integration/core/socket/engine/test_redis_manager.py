"""The Redis manager's overrides of python-socketio's private methods (listed in
`app.core.socket.engine`), on the real upstream class against Redis: the upstream method is still
there with the signature it was written against, and the override does what it is there for."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
import socketio
from redis.asyncio import Redis

from app.core.socket.engine.managers import ROOM_OP, RedisManager
from tests.support.backends import REDIS_HOST, REDIS_PORT, require_services
from tests.support.overrides import assert_overrides


@pytest.fixture
async def redis_url() -> str:
    require_services()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def manager(redis_url: str) -> AsyncIterator[RedisManager]:
    manager = RedisManager(redis_url, channel=f"parley-test-{uuid.uuid4().hex}")
    yield manager
    if manager.redis is not None:
        await manager.redis.aclose()


async def test_a_publish_reconnects_and_an_unreachable_redis_is_an_outage_not_an_error(
    manager: RedisManager,
) -> None:
    assert_overrides(RedisManager, socketio.AsyncRedisManager, "_publish")
    assert not manager.connected
    assert await manager._publish({"method": "noop"}) == 0, "published after connecting (no listener)"
    assert manager.connected
    assert not manager.outage

    gone = RedisManager("redis://127.0.0.1:1/0", channel="parley-test-gone")
    assert await gone._publish({"method": "noop"}) is None
    assert gone.outage
    assert not gone.connected


async def test_the_listener_subscribes_and_ends_an_outage(manager: RedisManager, redis_url: str) -> None:
    assert_overrides(RedisManager, socketio.AsyncRedisManager, "_redis_listen_with_retries")
    manager.outage = True
    listening = manager._redis_listen_with_retries()
    assert isinstance(listening, AsyncGenerator)  # typed AsyncIterator; closed below
    receiving = asyncio.ensure_future(anext(listening))
    publisher = Redis.from_url(redis_url)
    try:
        await until_subscribed(publisher, manager.channel)
        await publisher.publish(manager.channel, "hello")
        message = await asyncio.wait_for(receiving, 5)
    finally:
        await publisher.aclose()
        await listening.aclose()
    assert (message["type"], message["data"]) == ("message", b"hello")
    assert not manager.outage


async def until_subscribed(publisher: Redis, channel: str) -> None:
    """Until a listener started in a task is subscribed to `channel` (Redis says so; 5 s at most)."""
    async with asyncio.timeout(5):
        while not dict(await publisher.pubsub_numsub(channel)).get(channel.encode()):
            await asyncio.sleep(0)


async def test_room_operations_of_other_nodes_are_applied_and_not_handed_on(
    manager: RedisManager, redis_url: str
) -> None:
    assert_overrides(RedisManager, socketio.AsyncRedisManager, "_listen")
    applied: list[dict[str, Any]] = []

    async def apply(op: dict[str, Any]) -> None:
        applied.append(op)

    manager._apply_room_op = apply  # type: ignore[method-assign]
    listening = manager._listen()
    assert isinstance(listening, AsyncGenerator)  # typed AsyncIterator; closed below
    receiving = asyncio.ensure_future(anext(listening))
    publisher = Redis.from_url(redis_url)
    try:
        await until_subscribed(publisher, manager.channel)
        other = {"method": ROOM_OP, "host_id": "another-node", "op": "leave", "room": "r:1"}
        own = {"method": ROOM_OP, "host_id": manager.host_id, "op": "leave", "room": "r:2"}
        for message in (other, own, {"method": "emit", "event": "hello"}):
            await publisher.publish(manager.channel, json.dumps(message))
        handed_on = await asyncio.wait_for(receiving, 5)
    finally:
        await publisher.aclose()
        await listening.aclose()
    assert json.loads(handed_on) == {"method": "emit", "event": "hello"}
    assert applied == [other], "its own operations were applied when sent"
