"""The scores of a table: written by `game:score`, read by `GET /api/game/tables/{table}/scores`."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley_game.models import GameScore
from parley_game.schemas import Standing


async def add_score(session: AsyncSession, room: str, player: uuid.UUID, points: int) -> int:
    """Store a score and answer the player's total at the table; the caller commits."""
    session.add(GameScore(room=room, user_id=player, points=points))
    await session.flush()
    total = select(func.sum(GameScore.points)).where(GameScore.room == room, GameScore.user_id == player)
    return int(await session.scalar(total) or 0)


async def standings(session: AsyncSession, room: str) -> list[Standing]:
    total = func.sum(GameScore.points).label("total")
    rows = await session.execute(
        select(GameScore.user_id, total)
        .where(GameScore.room == room)
        .group_by(GameScore.user_id)
        .order_by(total.desc(), GameScore.user_id)
    )
    return [Standing(str(user_id), int(points)) for user_id, points in rows]
