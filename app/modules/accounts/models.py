"""Users: built-in accounts and users provisioned from an external issuer's tokens."""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, DatabaseClockMixin

USERNAME_MAX = 32
DISPLAY_NAME_MAX = 100
SKELETON_MAX = 255


class User(Base, DatabaseClockMixin):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_username_lower", func.lower("username"), unique=True),
        Index("uq_users_username_skeleton", "username_skeleton", unique=True),
    )

    username: Mapped[str] = mapped_column(String(USERNAME_MAX), nullable=False)
    username_skeleton: Mapped[str | None] = mapped_column(String(SKELETON_MAX), nullable=True)
    """What the name looks like (`policy.username_skeleton`); NULL only for look-alikes that predate it."""
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_MAX), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0", nullable=False)
    external_subject: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
