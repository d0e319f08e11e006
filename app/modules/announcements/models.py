"""Announcements made by administrators."""

from __future__ import annotations

import uuid
from typing import Any

from advanced_alchemy.types import GUID
from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, DatabaseClockMixin

TITLE_MAX = 200
BODY_MAX = 4000
URL_MAX = 2048
JSON_DOCUMENT = JSON().with_variant(JSONB(), "postgresql")


class Announcement(Base, DatabaseClockMixin):
    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_created_at", "created_at"),)

    title: Mapped[str] = mapped_column(String(TITLE_MAX), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    url: Mapped[str | None] = mapped_column(String(URL_MAX), nullable=True)
    image_url: Mapped[str | None] = mapped_column(String(URL_MAX), nullable=True)
    extra: Mapped[dict[str, Any]] = mapped_column("metadata", JSON_DOCUMENT, nullable=False, default=dict)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        GUID(length=16), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
