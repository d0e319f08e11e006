"""Who is online, on every node.

A user is online while at least one of their sockets is connected anywhere (`ConnectionTracker`
counts sockets per user per node and ignores nodes whose heartbeat lapsed). Transitions are decided
with one shared key per user, `presence_online:{user}`:

- connect: `set_if_absent` on the key; whoever creates it emits `user:status online`, so several
  tabs (or nodes) count once;
- last local disconnect: after a grace period (`grace`, at most two seconds, a quarter of
  `PRESENCE_TTL` when that is shorter) the node looks again; if the user has no socket anywhere,
  whoever deletes the key emits `user:status offline` and stores `last_seen_at`. A reconnect within
  the grace cancels the check, so a page reload does not flap offline/online;
- node death: every node sweeps for nodes whose heartbeat lapsed; one survivor (a short lock per
  dead node) takes that node's users from `presence_node:{node}` and marks offline those with no
  socket elsewhere. Detection takes at most `PRESENCE_TTL` plus one sweep interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Sequence

from app.core.context import AppContext
from app.core.security.identity import Identity
from app.core.socket.tracker import ConnectionTracker
from app.modules.chat import Membership
from app.modules.presence.declarations import PRESENCE_ROOMS, USER_STATUS
from app.modules.presence.schemas import UserStatus
from app.modules.presence.service import LastSeenService

logger = logging.getLogger(__name__)

GRACE_MAX = 2.0
SWEEP_INTERVAL_MAX = 2.0


def online_key(user_id: str) -> str:
    return f"presence_online:{user_id}"


def node_users_key(node_id: str) -> str:
    return f"presence_node:{node_id}"


def membership(ctx: AppContext) -> Membership:
    """Provided by the chat module; looked up per call so presence starts without it."""
    return ctx.get(Membership)  # type: ignore[type-abstract]


class Presence:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.state = ctx.state
        ttl = ctx.settings.presence_ttl
        self.grace = min(GRACE_MAX, ttl / 4)
        self.sweep_interval = min(SWEEP_INTERVAL_MAX, ttl / 6)
        self._local: Counter[str] = Counter()
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def tracker(self) -> ConnectionTracker:
        return self.ctx.get(ConnectionTracker)

    async def visible_to(self, viewer: uuid.UUID, user_ids: Sequence[str]) -> list[str]:
        """The ids whose presence `viewer` may see: themself and users sharing a conversation.

        Presence keeps user ids as text, the form of its state keys, rooms and payloads."""
        me = str(viewer)
        wanted = list(dict.fromkeys(user_ids))
        others = [user_id for user_id in wanted if user_id != me]
        contacts = await membership(self.ctx).contacts_among(me, others) if others else set()
        return [user_id for user_id in wanted if user_id == me or user_id in contacts]

    async def statuses(self, service: LastSeenService, user_ids: Sequence[str]) -> list[UserStatus]:
        """Current statuses of the existing users among `user_ids` (unknown ids are left out)."""
        seen = await service.last_seen_of(user_ids)
        known = [user_id for user_id in user_ids if user_id in seen]
        flags = await self.state.get_many([online_key(user_id) for user_id in known])
        return [
            UserStatus(user_id, "online" if flag is not None else "offline", seen[user_id])
            for user_id, flag in zip(known, flags, strict=True)
        ]

    async def connected(self, identity: Identity) -> None:
        user_id = str(identity.user_id)
        pending = self._pending.pop(user_id, None)
        if pending is not None:
            pending.cancel()
        self._local[user_id] += 1
        if self._local[user_id] == 1:
            await self.state.set_add(node_users_key(self.ctx.node_id), user_id)
        # No TTL: the key goes when the user goes offline or their node is swept.
        if await self.state.set_if_absent(online_key(user_id), b"1", ttl=None):
            async with self.ctx.unit_of_work() as uow:
                seen = await uow.service(LastSeenService).last_seen_of([user_id])
            await self._emit(UserStatus(user_id, "online", seen.get(user_id)))

    async def disconnected(self, identity: Identity) -> None:
        user_id = str(identity.user_id)
        if self._local[user_id] == 0:
            return
        self._local[user_id] -= 1
        if self._local[user_id] > 0:
            return
        del self._local[user_id]
        self._pending[user_id] = asyncio.create_task(
            self._offline_after_grace(user_id), name=f"presence-offline-{user_id}"
        )

    async def _offline_after_grace(self, user_id: str) -> None:
        await asyncio.sleep(self.grace)
        self._pending.pop(user_id, None)
        await self._settle(user_id)

    async def _settle(self, user_id: str) -> None:
        """No local socket left: go offline unless the user is connected elsewhere."""
        try:
            if await self.tracker.count(user_id) == 0 and await self.state.delete(online_key(user_id)):
                await self._mark_offline([user_id])
            if user_id not in self._local:
                await self.state.set_remove(node_users_key(self.ctx.node_id), user_id)
        except Exception:
            logger.exception("could not settle the presence of %s", user_id, extra={"user_id": user_id})

    async def _mark_offline(self, user_ids: list[str]) -> None:
        """Store `last_seen_at` and tell subscribers; they are told even if the database fails."""
        stamps: dict[str, dt.datetime | None] = {}
        try:
            async with self.ctx.unit_of_work() as uow:
                stamps = await uow.service(LastSeenService).touch(user_ids)
        except Exception:
            logger.exception("could not store last_seen_at of %d users", len(user_ids))
        for user_id in user_ids:
            await self._emit(UserStatus(user_id, "offline", stamps.get(user_id)))

    async def _emit(self, status: UserStatus) -> None:
        await self.ctx.hub.emit(USER_STATUS, status, room=PRESENCE_ROOMS.room(status.user_id))
        logger.debug("user %s is %s", status.user_id, status.status, extra={"user_id": status.user_id})

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="presence-sweeper")

    async def stop(self) -> None:
        """Shutting down: settle users whose last local socket just closed, without waiting."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        pending, self._pending = list(self._pending.items()), {}
        for user_id, task in pending:
            task.cancel()
            await self._settle(user_id)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - the next sweep retries; the state layer logs the cause
                logger.warning("presence sweep failed; retrying")

    async def sweep(self) -> None:
        """Mark offline the users of nodes whose heartbeat lapsed (one survivor per dead node)."""
        for node_id in await self.tracker.dead_nodes():
            if node_id == self.ctx.node_id:
                continue
            lock = f"presence_sweep:{node_id}"
            if await self.state.set_if_absent(
                lock, self.ctx.node_id.encode(), ttl=self.ctx.settings.presence_ttl
            ):
                await self._bury(node_id)

    async def _bury(self, node_id: str) -> None:
        users = sorted(await self.state.set_members(node_users_key(node_id)))
        gone = [
            user_id
            for user_id in users
            if await self.tracker.count(user_id) == 0 and await self.state.delete(online_key(user_id))
        ]
        if gone:
            await self._mark_offline(gone)
        await self.tracker.forget_node(node_id, users)
        await self.state.delete(node_users_key(node_id))
        logger.info(
            "node %s stopped heartbeating; %d of its %d users went offline", node_id, len(gone), len(users)
        )
