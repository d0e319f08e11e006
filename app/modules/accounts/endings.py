"""Every node forgets a login session that ended before the request that ended it answers.

The node that ends sessions (`SessionsRevoked`) drops them from its own `LiveSessions`, signals every
node on `CHANNEL`, and waits until each live node (`ConnectionTracker.live_nodes`) answered on
`DONE_CHANNEL` that it dropped them too, for at most `CONFIRM_WITHIN` seconds. A node that does not
answer by then has lost Redis or stopped; what it kept is trusted for at most `TRUSTED_FOR` seconds.
On one node the signal is delivered in process and nothing is waited for.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TypeVar

import msgspec

from app.core.context import AppContext
from app.core.security.domain_events import SessionsRevoked
from app.core.socket.tracker import ConnectionTracker
from app.modules.accounts.holders import LiveSessions

logger = logging.getLogger(__name__)

CHANNEL = "sessions_ended"
DONE_CHANNEL = "sessions_ended_done"
CONFIRM_WITHIN = 2.0
S = TypeVar("S", bound=msgspec.Struct)


class Ended(msgspec.Struct):
    origin: str
    ask: int
    sessions: list[str]


class Dropped(msgspec.Struct):
    origin: str
    ask: int
    node: str


class SessionEndings:
    def __init__(self, ctx: AppContext, live: LiveSessions) -> None:
        self.ctx = ctx
        self.live = live
        self._asks = itertools.count(1)
        self._answers: dict[int, set[str]] = {}
        self._answered = asyncio.Condition()

    async def start(self) -> None:
        await self.ctx.state.subscribe(CHANNEL, self._on_ended)
        await self.ctx.state.subscribe(DONE_CHANNEL, self._on_dropped)
        self.ctx.events.subscribe(SessionsRevoked, self._revoked)

    async def _revoked(self, event: SessionsRevoked) -> None:
        await self.end(list(event.session_ids))

    async def end(self, session_ids: list[str]) -> None:
        """Drop these sessions here, then on every live node; return once each confirmed it."""
        self.live.drop(session_ids)
        me = self.ctx.node_id
        ask = next(self._asks)
        self._answers[ask] = set()
        others: set[str] = set()
        try:
            await self.ctx.state.publish(CHANNEL, msgspec.json.encode(Ended(me, ask, session_ids)))
            others = set(await self.ctx.get(ConnectionTracker).live_nodes()) - {me}
            async with self._answered:
                await asyncio.wait_for(
                    self._answered.wait_for(lambda: others <= self._answers[ask]), CONFIRM_WITHIN
                )
        except TimeoutError:
            logger.warning(
                "ended sessions: %d of %d other nodes confirmed within %g s",
                len(self._answers[ask] & others),
                len(others),
                CONFIRM_WITHIN,
            )
        except Exception as exc:  # noqa: BLE001 - the database already ended them; other nodes catch up
            logger.warning("could not tell other nodes of ended sessions (%s: %s)", type(exc).__name__, exc)
        finally:
            del self._answers[ask]

    async def _on_ended(self, raw: bytes) -> None:
        ended = _decoded(raw, Ended, CHANNEL)
        if ended is None or ended.origin == self.ctx.node_id:
            return
        self.live.drop(ended.sessions)
        done = Dropped(ended.origin, ended.ask, self.ctx.node_id)
        await self.ctx.state.publish(DONE_CHANNEL, msgspec.json.encode(done))

    async def _on_dropped(self, raw: bytes) -> None:
        dropped = _decoded(raw, Dropped, DONE_CHANNEL)
        if dropped is None or dropped.origin != self.ctx.node_id or dropped.ask not in self._answers:
            return
        self._answers[dropped.ask].add(dropped.node)
        async with self._answered:
            self._answered.notify_all()


def _decoded(raw: bytes, kind: type[S], channel: str) -> S | None:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.DecodeError:
        logger.warning("ignoring a malformed %s signal", channel)
        return None
