"""A presence subscription lasts as long as the shared conversation that allowed it.

`presence:{user}` admits the user themself and users who share a conversation with them. When users
stop being participants of a conversation (`MembershipEnded`), the node that made the change signals
every node; each looks at its own sockets only: a socket of such a user in `presence:{other}`, and a
socket of another user in `presence:{user}`, leave that room unless the two still share a
conversation. That costs one query per such user, and none on a node where no socket follows them
or is followed by them.
"""

from __future__ import annotations

import logging

import msgspec

from app.core.context import AppContext
from app.modules.chat import MembershipEnded
from app.modules.presence.declarations import PRESENCE_ROOMS
from app.modules.presence.presence import membership

logger = logging.getLogger(__name__)

CHANNEL = "presence_relations_ended"


class PresenceRelations:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        await self.ctx.state.subscribe(CHANNEL, self._on_signal)
        self.ctx.events.subscribe(MembershipEnded, self._announce)

    async def _announce(self, event: MembershipEnded) -> None:
        await self.ctx.state.publish(CHANNEL, msgspec.json.encode(list(event.user_ids)))

    async def _on_signal(self, raw: bytes) -> None:
        try:
            user_ids = msgspec.json.decode(raw, type=list[str])
        except msgspec.DecodeError:
            logger.warning("ignoring a malformed %s signal", CHANNEL)
            return
        for user_id in user_ids:
            await self.recheck(user_id)

    async def recheck(self, user_id: str) -> None:
        """End this node's presence subscriptions between `user_id` and users they no longer share
        a conversation with."""
        hub = self.ctx.hub
        own = hub.local.of_user(user_id)
        followed = {
            PRESENCE_ROOMS.key_of(room)
            for sid in own
            for room in hub.rooms_of(sid)
            if PRESENCE_ROOMS.holds(room)
        }
        followed.discard(user_id)
        followers: dict[str, str] = {}
        for sid in hub.members(PRESENCE_ROOMS.room(user_id)):
            sock = hub.local.get(sid)
            follower = str(sock.identity.user_id) if sock is not None else user_id
            if follower != user_id:
                followers[sid] = follower
        candidates = followed | set(followers.values())
        if not candidates:
            return
        lost = candidates - await membership(self.ctx).contacts_among(user_id, sorted(candidates))
        for sid in own:
            for other in sorted(lost & followed):
                await hub.leave(sid, PRESENCE_ROOMS.room(other))
        for sid, follower in followers.items():
            if follower in lost:
                await hub.leave(sid, PRESENCE_ROOMS.room(user_id))
        if lost:
            logger.info(
                "presence between %s and %d users ended with their last shared conversation",
                user_id,
                len(lost),
                extra={"user_id": user_id},
            )
