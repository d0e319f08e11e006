"""A login session that ends is forgotten by every node before the call that ended it returns.

Each "node" is an AppContext of its own (its own node id, heartbeat, `LiveSessions` and
`SessionEndings`) on the same database; on the scaled-out backend each has its own connection to
the one Redis, in process they share the process's store. Nothing is slept on: the assertions run
right after `end` returns, before any other node could have been given time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from app.config.settings import Settings
from app.core.context import AppContext
from app.core.db import Database
from app.core.security.domain_events import SessionsRevoked
from app.core.security.tokens import TokenCodec
from app.core.socket.tracker import ConnectionTracker
from app.core.state import StateBackend, create_state_backend
from app.modules.accounts.endings import SessionEndings
from app.modules.accounts.holders import LiveSessions
from tests.support.backends import Backend

TTL = 5.0


@dataclass
class Node:
    ctx: AppContext
    live: LiveSessions
    endings: SessionEndings
    tracker: ConnectionTracker


@dataclass
class Nodes:
    settings: Settings
    db: Database
    prefix: str
    shared: StateBackend | None
    started: list[Node] = field(default_factory=list)
    states: list[StateBackend] = field(default_factory=list)

    async def node(self) -> Node:
        state = self.shared or create_state_backend(self.settings, prefix=self.prefix)
        if state is not self.shared:
            self.states.append(state)
        ctx = AppContext(self.settings, self.db, state, TokenCodec(self.settings.jwt))
        tracker = ConnectionTracker(state, ctx.node_id, TTL)
        ctx.provide(ConnectionTracker, tracker)
        live = LiveSessions()
        endings = SessionEndings(ctx, live)
        await tracker.start()
        await endings.start()
        self.started.append(Node(ctx, live, endings, tracker))
        return self.started[-1]


@pytest.fixture
async def nodes(backend: Backend) -> AsyncIterator[Nodes]:
    settings = backend.settings()
    prefix = f"{settings.redis_prefix}endings-{uuid.uuid4().hex[:8]}:"
    shared = None if settings.redis_url else create_state_backend(settings, prefix=prefix)
    made = Nodes(settings, Database(settings), prefix, shared)
    yield made
    for node in made.started:
        await node.tracker.stop()
    for state in [*made.states, *([shared] if shared is not None else [])]:
        await state.close()
    await made.db.dispose()


def seen_live(node: Node, session_id: str, user_id: uuid.UUID) -> None:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    node.live.keep(session_id, user_id, expires, node.live.drops)
    assert node.live.owner(session_id, dt.datetime.now(dt.UTC)) == user_id


async def test_a_session_ended_on_one_node_is_forgotten_on_every_node_when_that_returns(
    nodes: Nodes,
) -> None:
    a, b, c = await nodes.node(), await nodes.node(), await nodes.node()
    user_id, session_id, other = uuid.uuid4(), str(uuid.uuid4()), str(uuid.uuid4())
    for node in (a, b, c):
        seen_live(node, session_id, user_id)
        seen_live(node, other, user_id)
    await a.ctx.events.publish(SessionsRevoked(user_id, (session_id,), "logout", "You logged out"))
    now = dt.datetime.now(dt.UTC)
    assert [node.live.owner(session_id, now) for node in (a, b, c)] == [None, None, None]
    assert [node.live.owner(other, now) for node in (a, b, c)] == [user_id] * 3, "only the ended one goes"


async def test_a_check_that_read_the_database_during_an_ending_keeps_nothing(nodes: Nodes) -> None:
    """What a check read before a revocation reached its node may be the live session of before."""
    a, b = await nodes.node(), await nodes.node()
    user_id, session_id = uuid.uuid4(), str(uuid.uuid4())
    drops_before_reading = b.live.drops
    await a.endings.end([session_id])
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    b.live.keep(session_id, user_id, expires, drops_before_reading)
    assert b.live.owner(session_id, dt.datetime.now(dt.UTC)) is None
