"""Users (built-in accounts and those provisioned from an external issuer's tokens) and login sessions."""

from __future__ import annotations

import datetime as dt
import uuid

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Index, String, func
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


DEVICE_MAX = 64
TOKEN_HASH_LENGTH = 64
"""A SHA-256 digest in hex."""


class LoginSession(Base, DatabaseClockMixin):
    """A login: what its refresh tokens rotate against, and whether and why it ended.

    A refresh token is `{id}.{family secret}.{rotating secret}`; only SHA-256 digests are stored.
    `refresh_hash` is the digest of the current rotating secret and `previous_hash` that of the one
    it replaced (at `rotated_at`). The family secret is the same in every refresh token of the
    session, so a token that carries it but not the current secret is a rotated token used again.
    """

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_device", "user_id", "device"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    device: Mapped[str] = mapped_column(String(DEVICE_MAX), nullable=False)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True), nullable=False)
    family_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), nullable=False)
    refresh_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), nullable=False)
    previous_hash: Mapped[str | None] = mapped_column(String(TOKEN_HASH_LENGTH), nullable=True)
    rotated_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
