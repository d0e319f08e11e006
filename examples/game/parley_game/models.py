"""The module's own table: every score a player made at a game table."""

from __future__ import annotations

import uuid

from advanced_alchemy.types import GUID
from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, DatabaseClockMixin
from app.core.socket.protocol import ROOM_NAME_MAX


class GameScore(Base, DatabaseClockMixin):
    __tablename__ = "game_scores"
    __table_args__ = (Index("ix_game_scores_room", "room"),)

    room: Mapped[str] = mapped_column(String(ROOM_NAME_MAX), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    points: Mapped[int] = mapped_column(Integer, nullable=False)
