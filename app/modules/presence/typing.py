"""Typing indicators: broadcast to the conversation's focused viewers, throttled, and expired.

Per user and conversation, shared by every node:
- `typing:{conversation}:{user}` holds the deadline (epoch seconds) of the current indicator;
  whoever deletes it announces `typing: false`, so a stop is sent once even if an explicit stop, a
  disconnect and an expiry race on different nodes;
- `typing_throttle:{conversation}:{user}` lives for the throttle window after a broadcast;
  `typing: true` inside the window refreshes the deadline but is not re-broadcast.
The node that received the last `typing: true` keeps a timer; when it fires and the deadline was
not pushed back meanwhile, the indicator expires with a server-sent `typing: false`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from app.core.context import AppContext
from app.modules.chat import ACTIVE_ROOMS
from app.modules.presence.declarations import CHAT_TYPING
from app.modules.presence.schemas import TypingOut

logger = logging.getLogger(__name__)

THROTTLE_MAX = 3.0
EXPIRY_SLACK = 0.05


def typing_key(conversation_id: str, user_id: str) -> str:
    return f"typing:{conversation_id}:{user_id}"


def throttle_key(conversation_id: str, user_id: str) -> str:
    return f"typing_throttle:{conversation_id}:{user_id}"


class TypingIndicators:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.ttl = ctx.settings.typing_ttl
        self.throttle = min(THROTTLE_MAX, self.ttl / 2)
        self._timers: dict[tuple[str, str], tuple[str, asyncio.Task[None]]] = {}

    async def start(self, sid: str, conversation_id: str, user_id: str) -> None:
        deadline = time.time() + self.ttl
        await self.state.put(typing_key(conversation_id, user_id), repr(deadline).encode(), ttl=self.ttl * 2)
        self._arm(sid, conversation_id, user_id, self.ttl)
        if await self.state.set_if_absent(throttle_key(conversation_id, user_id), b"1", ttl=self.throttle):
            await self._broadcast(sid, conversation_id, user_id, typing=True)

    async def stop(self, sid: str, conversation_id: str, user_id: str) -> None:
        self._disarm(conversation_id, user_id)
        await self.state.delete(throttle_key(conversation_id, user_id))
        if await self.state.delete(typing_key(conversation_id, user_id)):
            await self._broadcast(sid, conversation_id, user_id, typing=False)

    async def socket_closed(self, sid: str) -> None:
        """Stop every indicator this socket started last."""
        for (conversation_id, user_id), (owner, _task) in list(self._timers.items()):
            if owner == sid:
                await self.stop(sid, conversation_id, user_id)

    async def close(self) -> None:
        for _sid, task in self._timers.values():
            task.cancel()
        self._timers.clear()

    async def _broadcast(self, sid: str, conversation_id: str, user_id: str, *, typing: bool) -> None:
        await self.ctx.hub.emit(
            CHAT_TYPING,
            TypingOut(conversation_id, user_id, typing, self.ttl if typing else 0.0),
            room=ACTIVE_ROOMS.room(conversation_id),
            skip_sid=sid,
        )

    def _arm(self, sid: str, conversation_id: str, user_id: str, delay: float) -> None:
        self._disarm(conversation_id, user_id)
        task = asyncio.create_task(self._expire_after(sid, conversation_id, user_id, delay))
        self._timers[(conversation_id, user_id)] = (sid, task)

    def _disarm(self, conversation_id: str, user_id: str) -> None:
        entry = self._timers.pop((conversation_id, user_id), None)
        if entry is not None and entry[1] is not asyncio.current_task():
            entry[1].cancel()

    async def _expire_after(self, sid: str, conversation_id: str, user_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            raw = await self.state.get(typing_key(conversation_id, user_id))
            remaining = float(raw) - time.time() if raw is not None else 0.0
            if remaining > EXPIRY_SLACK:
                self._arm(sid, conversation_id, user_id, remaining)
            else:
                await self.stop(sid, conversation_id, user_id)
        except Exception:  # noqa: BLE001 - clients also drop the indicator after `expires_in`
            logger.warning("could not expire the typing indicator of %s", user_id, extra={"user_id": user_id})
