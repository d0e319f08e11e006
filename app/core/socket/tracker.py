"""How many sockets each user has, on which node, and which nodes are alive.

Each node counts its own sockets per user in a shared hash (`sockets:{user}` → node → count) and
heartbeats `node:{id}` with a TTL; counts of a node whose heartbeat lapsed are ignored, and the
survivors can sweep them (see `dead_nodes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.core.state import StateBackend

logger = logging.getLogger(__name__)


class ConnectionTracker:
    def __init__(self, state: StateBackend, node_id: str, ttl: float) -> None:
        self.state = state
        self.node_id = node_id
        self.ttl = ttl
        self._heartbeat: asyncio.Task[None] | None = None

    @staticmethod
    def _user_key(user_id: str) -> str:
        return f"sockets:{user_id}"

    async def start(self) -> None:
        """Announce this node; if the state backend is down, the heartbeat keeps trying."""
        try:
            await self.beat()
        except Exception:  # noqa: BLE001 - a node may start during an outage; new sockets get UNAVAILABLE
            logger.warning("state backend unreachable at start-up; the node heartbeat will retry")
        self._heartbeat = asyncio.create_task(self._beat_forever(), name="parley-node-heartbeat")

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(Exception):
            await self.state.delete(f"node:{self.node_id}")
            await self.state.set_remove("nodes", self.node_id)

    async def beat(self) -> None:
        """Refresh liveness, and re-list the node in case a survivor swept it during an outage."""
        await self.state.put(f"node:{self.node_id}", b"1", ttl=self.ttl)
        await self.state.set_add("nodes", self.node_id)

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self.beat()
            except Exception:  # noqa: BLE001 - a missed beat is retried; the state layer logs the cause
                logger.warning("node heartbeat failed; retrying")

    async def add(self, user_id: str) -> int:
        """Count a new socket of `user_id` on this node; return the user's live total."""
        await self.state.hash_incr(self._user_key(user_id), self.node_id, 1)
        return await self.count(user_id)

    async def remove(self, user_id: str) -> None:
        """Uncount a socket of `user_id` on this node."""
        await self.state.hash_incr(self._user_key(user_id), self.node_id, -1)

    async def count(self, user_id: str) -> int:
        per_node = await self.state.hash_get_all(self._user_key(user_id))
        if not per_node:
            return 0
        nodes = list(per_node)
        alive = await self.state.get_many([f"node:{node}" for node in nodes])
        return sum(per_node[node] for node, beat in zip(nodes, alive, strict=True) if beat is not None)

    async def dead_nodes(self) -> list[str]:
        return [node for node, alive in (await self._nodes()).items() if not alive]

    async def live_nodes(self) -> list[str]:
        """The nodes whose heartbeat has not lapsed, this one included."""
        return [node for node, alive in (await self._nodes()).items() if alive]

    async def _nodes(self) -> dict[str, bool]:
        """Every listed node, sorted, and whether its heartbeat is current."""
        nodes: list[str] = sorted(await self.state.set_members("nodes"))
        beats = await self.state.get_many([f"node:{node}" for node in nodes])
        return {node: beat is not None for node, beat in zip(nodes, beats, strict=True)}

    async def forget_node(self, node_id: str, user_ids: list[str]) -> None:
        for user_id in user_ids:
            await self.state.hash_delete(self._user_key(user_id), node_id)
        await self.state.set_remove("nodes", node_id)
