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
from socketio.async_pubsub_manager import AsyncPubSubManager

from app.core.metrics import Metrics
from app.core.socket.engine.managers import ROOM_OP, RedisManager
from tests.support.backends import REDIS_HOST, REDIS_PORT, require_services
from tests.support.overrides import assert_overrides
from tests.unit.core.socket.engine.test_fanout_manager import ROOMY, FakeEioSocket


@pytest.fixture
async def redis_url() -> str:
    require_services()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
async def manager(redis_url: str) -> AsyncIterator[RedisManager]:
    manager = RedisManager(redis_url, f"parley-test-{uuid.uuid4().hex}", Metrics())
    yield manager
    await manager.close()


async def test_a_publish_answers_its_receivers_and_an_unreachable_redis_is_an_outage_not_an_error(
    manager: RedisManager,
) -> None:
    assert_overrides(RedisManager, AsyncPubSubManager, "_publish")
    assert await manager._publish({"method": "noop"}) == 0, "published (no node listens)"
    assert not manager.channels.outages.down

    gone = RedisManager("redis://127.0.0.1:1/0", "parley-test-gone", Metrics())
    try:
        assert await gone._publish({"method": "noop"}) == 0
        assert gone.channels.outages.down
    finally:
        await gone.close()


async def test_a_second_copy_of_an_emit_to_several_rooms_is_not_delivered_again(
    manager: RedisManager,
) -> None:
    assert_overrides(RedisManager, AsyncPubSubManager, "_handle_emit")
    server = socketio.AsyncServer(client_manager=manager, async_mode="asgi")
    server.eio.sockets["eio-0"] = recipient = FakeEioSocket(ROOMY)
    sid = await manager.connect("eio-0", "/")
    manager.basic_enter_room(sid, "/", "game:a")
    manager.basic_enter_room(sid, "/", "game:b")
    copy = {"method": "emit", "event": "news", "data": ["x"], "namespace": "/", "room": ["game:a", "game:b"]}
    for _ in range(2):
        await manager._handle_emit({**copy, "host_id": "another-node", "copy": 7})
    await manager._handle_emit({**copy, "host_id": "another-node", "copy": 8})
    assert recipient.written() == ['42["news","x"]', '42["news","x"]'], "copy 7 twice, copy 8 once"


async def test_room_operations_of_other_nodes_are_applied_and_not_handed_on(
    manager: RedisManager, redis_url: str
) -> None:
    assert_overrides(RedisManager, socketio.AsyncRedisManager, "_listen")
    applied: list[dict[str, Any]] = []

    async def apply(op: dict[str, Any]) -> None:
        applied.append(op)

    manager._apply_room_op = apply  # type: ignore[method-assign]
    manager.channels.want(manager.channel)
    assert await manager.channels.subscribed([manager.channel], 5)
    listening = manager._listen()
    assert isinstance(listening, AsyncGenerator)  # typed AsyncIterator; closed below
    receiving = asyncio.ensure_future(anext(listening))
    publisher = Redis.from_url(redis_url)
    try:
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
