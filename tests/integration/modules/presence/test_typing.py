"""Typing indicators on both backends: throttle, expiry, refresh and stop from another node.

Two "nodes" are two TypingIndicators over one state backend, each with a recording hub; emits
are awaited, never slept on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from app.core.context import AppContext
from app.core.db import Database
from app.core.security.tokens import TokenCodec
from app.core.state import StateBackend, create_state_backend
from app.modules.presence.typing import TypingIndicators
from tests.support.backends import Backend
from tests.support.hubs import RecordingHub

TTL = 0.6


@dataclass
class Pair:
    state: StateBackend
    db: Database
    hubs: list[RecordingHub] = field(default_factory=list)
    nodes: list[TypingIndicators] = field(default_factory=list)

    def node(self, backend: Backend) -> tuple[TypingIndicators, RecordingHub]:
        settings = backend.settings(TYPING_TTL=TTL)
        ctx = AppContext(settings, self.db, self.state, TokenCodec(settings.jwt))
        hub = RecordingHub()
        ctx.attach_hub(hub)  # type: ignore[arg-type]
        self.hubs.append(hub)
        self.nodes.append(TypingIndicators(ctx))
        return self.nodes[-1], hub

    async def settled(self) -> None:
        """Every node's pending expiry has run."""
        for node in self.nodes:
            while node._timers:
                await asyncio.wait_for(asyncio.gather(*(task for _, task in node._timers.values())), TTL * 4)

    def typing_events(self, room: str) -> list[bool]:
        return [event.typing for hub in self.hubs for event in hub.sent[room]]


@pytest.fixture
async def pair(backend: Backend) -> AsyncIterator[Pair]:
    settings = backend.settings()
    state = create_state_backend(settings, prefix=f"{settings.redis_prefix}typing-{uuid.uuid4().hex[:8]}:")
    made = Pair(state, Database(settings))
    yield made
    for node in made.nodes:
        await node.close()
    await state.close()
    await made.db.dispose()


async def test_repeats_are_throttled_and_the_indicator_expires(pair: Pair, backend: Backend) -> None:
    node, hub = pair.node(backend)
    user, conversation = str(uuid.uuid4()), str(uuid.uuid4())
    room = f"active:{conversation}"
    started = time.monotonic()
    await node.start("sid-1", conversation, user)
    await node.start("sid-1", conversation, user)
    sent = await hub.wait_for(room, 2, timeout=TTL * 4)
    assert [(e.typing, e.expires_in) for e in sent] == [(True, TTL), (False, 0.0)]
    assert sent[0].user_id == user
    assert time.monotonic() - started >= TTL * 0.9


async def test_refresh_on_another_node_pushes_the_expiry_back(pair: Pair, backend: Backend) -> None:
    first, first_hub = pair.node(backend)
    second, second_hub = pair.node(backend)
    user, conversation = str(uuid.uuid4()), str(uuid.uuid4())
    room = f"active:{conversation}"
    await first.start("sid-a", conversation, user)
    await first_hub.wait_for(room, 1)
    await asyncio.sleep(TTL * 0.6)  # part of the indicator's life passes, and the throttle window
    refreshed = time.monotonic()
    await second.start("sid-b", conversation, user)
    await pair.settled()
    assert time.monotonic() - refreshed >= TTL * 0.9, "the first node ended it at its own deadline"
    assert [e.typing for e in first_hub.sent[room]] == [True, False]
    assert [e.typing for e in second_hub.sent[room]] == [True]


async def test_a_stop_is_announced_once_whoever_sends_it(pair: Pair, backend: Backend) -> None:
    first, first_hub = pair.node(backend)
    second, _ = pair.node(backend)
    user, conversation = str(uuid.uuid4()), str(uuid.uuid4())
    room = f"active:{conversation}"
    await first.start("sid-a", conversation, user)
    await second.stop("sid-b", conversation, user)
    await second.stop("sid-b", conversation, user)
    await pair.settled()
    assert pair.typing_events(room) == [True, False]

    await first.start("sid-a", conversation, user)
    sent = await first_hub.wait_for(room, 2)
    assert sent[-1].typing is True, "a stop re-opens the throttle window"


async def test_closing_a_socket_stops_only_what_it_started(pair: Pair, backend: Backend) -> None:
    node, hub = pair.node(backend)
    user, conversation, other_conversation = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    await node.start("sid-a", conversation, user)
    await node.start("sid-b", other_conversation, user)
    await node.socket_closed("sid-a")
    assert [e.typing for e in hub.sent[f"active:{conversation}"]] == [True, False]
    assert [e.typing for e in hub.sent[f"active:{other_conversation}"]] == [True]
