"""Presence decisions on both backends, with two nodes sharing one store and one database.

Each "node" is an AppContext of its own (its own node id, tracker and Presence) over the same state
backend and database; emits are recorded instead of sent, and awaited, never slept on. Who shares
a conversation with whom comes from a stub `Membership` here; the e2e tests use the chat module.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.core.context import AppContext
from app.core.db import Database, UnitOfWork
from app.core.security.identity import Identity
from app.core.security.tokens import TokenCodec
from app.core.socket.tracker import ConnectionTracker
from app.core.state import StateBackend, create_state_backend
from app.modules.accounts.service import UserService
from app.modules.chat import Membership
from app.modules.presence.presence import Presence, online_key
from app.modules.presence.room_hooks import PresenceRoomHook
from app.modules.presence.schemas import UserStatus
from app.modules.presence.service import LastSeenService
from tests.support.backends import Backend
from tests.support.clients import PASSWORD
from tests.support.hubs import RecordingHub

TTL = 3.0


@dataclass
class StubMembership:
    pairs: set[frozenset[str]] = field(default_factory=set)

    def share(self, first: str, second: str) -> None:
        self.pairs.add(frozenset((first, second)))

    async def is_participant(self, conversation_id: str, user_id: str) -> bool:
        return False

    async def contacts_among(self, user_id: str, candidates: Sequence[str]) -> set[str]:
        return {other for other in candidates if frozenset((user_id, other)) in self.pairs}


@dataclass
class Node:
    ctx: AppContext
    hub: RecordingHub
    presence: Presence
    tracker: ConnectionTracker

    async def connect(self, identity: Identity) -> None:
        """What the socket runtime does on connect: count the socket, then the on_connect hook."""
        await self.tracker.add(str(identity.user_id))
        await self.presence.connected(identity)

    async def disconnect(self, identity: Identity) -> None:
        await self.tracker.remove(str(identity.user_id))
        await self.presence.disconnected(identity)


@dataclass
class Cluster:
    settings: Any
    db: Database
    state: StateBackend
    membership: StubMembership
    nodes: list[Node] = field(default_factory=list)

    def node(self) -> Node:
        ctx = AppContext(self.settings, self.db, self.state, TokenCodec(self.settings.jwt))
        hub = RecordingHub()
        ctx.attach_hub(hub)  # type: ignore[arg-type]
        tracker = ConnectionTracker(self.state, ctx.node_id, TTL)
        ctx.provide(ConnectionTracker, tracker)
        ctx.provide(Membership, self.membership)  # type: ignore[type-abstract]
        presence = Presence(ctx)
        ctx.provide(Presence, presence)
        self.nodes.append(Node(ctx, hub, presence, tracker))
        return self.nodes[-1]

    async def user(self) -> Identity:
        username = f"p{uuid.uuid4().hex[:12]}"
        async with UnitOfWork(self.db) as uow:
            user = await uow.service(UserService).register(username, PASSWORD, None)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        return Identity(user.id, str(uuid.uuid4()), expires, username, username)

    async def statuses(self, node: Node, user_ids: Sequence[str]) -> list[UserStatus]:
        async with UnitOfWork(self.db) as uow:
            return await node.presence.statuses(uow.service(LastSeenService), user_ids)


@pytest.fixture
async def cluster(backend: Backend) -> AsyncIterator[Cluster]:
    settings = backend.settings(PRESENCE_TTL=TTL)
    state = create_state_backend(settings, prefix=f"{settings.redis_prefix}presence-{uuid.uuid4().hex[:8]}:")
    made = Cluster(settings, Database(settings), state, StubMembership())
    yield made
    for node in made.nodes:
        await node.presence.stop()
    await state.close()
    await made.db.dispose()


async def test_several_tabs_count_once(cluster: Cluster) -> None:
    node = cluster.node()
    alice = await cluster.user()
    room = f"presence:{alice.user_id}"
    for _tab in range(3):
        await node.connect(alice)
    online = await node.hub.wait_for(room, 1)
    assert [(s.status, s.last_seen_at) for s in online] == [("online", None)]
    for _tab in range(3):
        await node.disconnect(alice)
    sent = await node.hub.wait_for(room, 2)
    assert [s.status for s in sent] == ["online", "offline"]
    assert sent[1].last_seen_at is not None
    assert (await cluster.statuses(node, [str(alice.user_id)]))[0].status == "offline"
    assert await cluster.state.get(online_key(str(alice.user_id))) is None


async def test_reconnect_within_grace_does_not_flap(cluster: Cluster) -> None:
    node = cluster.node()
    alice = await cluster.user()
    room = f"presence:{alice.user_id}"
    await node.connect(alice)
    await node.disconnect(alice)
    await node.connect(alice)
    left_at = time.monotonic()
    await node.disconnect(alice)
    sent = await node.hub.wait_for(room, 2)
    assert time.monotonic() - left_at >= TTL / 4 * 0.9, "the grace is a quarter of PRESENCE_TTL here"
    assert [s.status for s in sent] == ["online", "offline"]
    await node.connect(alice)
    again = await node.hub.wait_for(room, 3)
    assert [s.status for s in again] == ["online", "offline", "online"]
    assert again[2].last_seen_at == sent[1].last_seen_at


async def test_online_while_a_socket_remains_on_another_node(cluster: Cluster) -> None:
    first, second = cluster.node(), cluster.node()
    await first.tracker.beat()
    await second.tracker.beat()
    alice = await cluster.user()
    room = f"presence:{alice.user_id}"
    await first.connect(alice)
    await second.connect(alice)
    await first.disconnect(alice)
    await asyncio.wait_for(asyncio.gather(*first.presence._pending.values()), 5)
    assert (await cluster.statuses(second, [str(alice.user_id)]))[0].status == "online"
    await second.disconnect(alice)
    await second.hub.wait_for(room, 1)
    assert [s.status for s in first.hub.sent[room]] == ["online"]
    assert [s.status for s in second.hub.sent[room]] == ["offline"]


async def test_survivor_marks_a_dead_nodes_users_offline(cluster: Cluster) -> None:
    survivor, dying = cluster.node(), cluster.node()
    for node in (survivor, dying):
        await node.tracker.beat()
        await cluster.state.set_add("nodes", node.ctx.node_id)
    alone, roaming = await cluster.user(), await cluster.user()
    await dying.connect(alone)
    await dying.connect(roaming)
    await survivor.connect(roaming)
    await cluster.state.delete(f"node:{dying.ctx.node_id}")

    await survivor.presence.sweep()
    sent = await survivor.hub.wait_for(f"presence:{alone.user_id}", 1)
    assert [(s.user_id, s.status) for s in sent] == [(str(alone.user_id), "offline")]
    assert sent[0].last_seen_at is not None
    assert survivor.hub.sent[f"presence:{roaming.user_id}"] == []
    statuses = await cluster.statuses(survivor, [str(alone.user_id), str(roaming.user_id)])
    assert [s.status for s in statuses] == ["offline", "online"]
    assert dying.ctx.node_id not in await cluster.state.set_members("nodes")
    assert await survivor.tracker.count(str(roaming.user_id)) == 1

    await survivor.presence.sweep()
    assert len(survivor.hub.sent[f"presence:{alone.user_id}"]) == 1


async def test_only_one_survivor_buries_a_node(cluster: Cluster) -> None:
    first, second, dying = cluster.node(), cluster.node(), cluster.node()
    for node in (first, second, dying):
        await node.tracker.beat()
        await cluster.state.set_add("nodes", node.ctx.node_id)
    alice = await cluster.user()
    await dying.connect(alice)
    await cluster.state.delete(f"node:{dying.ctx.node_id}")
    await asyncio.gather(first.presence.sweep(), second.presence.sweep())
    room = f"presence:{alice.user_id}"
    assert len(first.hub.sent[room]) + len(second.hub.sent[room]) == 1


async def test_shutdown_settles_pending_users_at_once(cluster: Cluster) -> None:
    node = cluster.node()
    alice = await cluster.user()
    await node.connect(alice)
    await node.disconnect(alice)
    await node.presence.stop()
    sent = node.hub.sent[f"presence:{alice.user_id}"]
    assert [s.status for s in sent] == ["online", "offline"]


async def test_visibility_is_self_and_contacts_only(cluster: Cluster) -> None:
    node = cluster.node()
    alice, bob, carol = await cluster.user(), await cluster.user(), await cluster.user()
    cluster.membership.share(str(alice.user_id), str(bob.user_id))
    unknown = str(uuid.uuid4())
    visible = await node.presence.visible_to(
        alice.user_id, [str(bob.user_id), str(carol.user_id), str(alice.user_id), unknown, str(bob.user_id)]
    )
    assert visible == [str(bob.user_id), str(alice.user_id)]
    assert [s.user_id for s in await cluster.statuses(node, [str(bob.user_id), unknown])] == [
        str(bob.user_id)
    ]

    hook = PresenceRoomHook(node.ctx)
    assert await hook.can_join(alice.user_id, f"presence:{alice.user_id}")
    assert await hook.can_join(alice.user_id, f"presence:{bob.user_id}")
    assert not await hook.can_join(alice.user_id, f"presence:{carol.user_id}")
    assert not await hook.can_join(alice.user_id, f"presence:{unknown}")
    assert not await hook.can_join(alice.user_id, f"presence:{str(bob.user_id).upper()}")
    assert not await hook.can_join(alice.user_id, "presence:not-a-uuid")
