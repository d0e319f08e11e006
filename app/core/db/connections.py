"""Giving back a connection that was kept out of the pool (the chat writer's, the handshake reads')."""

from __future__ import annotations

import contextlib

from sqlalchemy.ext.asyncio import AsyncConnection


async def give_back(connection: AsyncConnection | None, *, invalidate: bool) -> None:
    """Return `connection` to its pool; with `invalidate`, as dead (the pool opens a new one in its
    place). A connection that fails even at that is let go: the error it had stands."""
    if connection is None:
        return
    with contextlib.suppress(Exception):
        if invalidate:
            await connection.invalidate()
        await connection.close()
