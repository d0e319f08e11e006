"""Conversations, their participants, sequenced messages and notifications.

Every message of a conversation has a `seq` (1, 2, 3 …) taken from `conversations.last_seq` in the
transaction that stores it. A database trigger (migration 0002; on PostgreSQL one run per INSERT
statement since 0006) advances each sender's `last_read_seq` to the seq of their last message it
inserts, so a sender never has unread messages of their own, whatever path stored the message.
Another (migration 0005) hands a group on when its owner's participant row goes, whatever path
removed it: the longest-standing admin, else the longest-standing member, becomes the owner.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, DatabaseClockMixin, utc_now

TITLE_MAX = 200
BODY_MAX = 4000
CLIENT_MSG_ID_MAX = 64
NOTIFICATION_TITLE_MAX = 200
DIRECT_KEY_MAX = 73


def direct_key(first: uuid.UUID, second: uuid.UUID) -> str:
    """The one key of the direct conversation between two users, whichever of them starts it."""
    low, high = sorted((str(first), str(second)))
    return f"{low}:{high}"


class Conversation(Base, DatabaseClockMixin):
    __tablename__ = "conversations"

    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str | None] = mapped_column(String(TITLE_MAX), nullable=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        GUID(length=16), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    direct_key: Mapped[str | None] = mapped_column(String(DIRECT_KEY_MAX), nullable=True, unique=True)


class Participant(Base):
    __tablename__ = "conversation_participants"
    __table_args__ = (
        UniqueConstraint("conversation_id", "user_id", name="uq_conversation_participants_conversation_user"),
        Index("ix_conversation_participants_user_conversation", "user_id", "conversation_id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    last_read_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    joined_at: Mapped[dt.datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=utc_now(), nullable=False
    )
    muted_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    """Set while the participant has muted the conversation (see `conversation:mute`)."""


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        UniqueConstraint(
            "conversation_id", "sender_id", "client_msg_id", name="uq_messages_conversation_sender_client_msg"
        ),
        Index(
            "ix_messages_body_trgm",
            "body",
            postgresql_using="gin",
            postgresql_ops={"body": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sender_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID(length=16), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    client_msg_id: Mapped[str | None] = mapped_column(String(CLIENT_MSG_ID_MAX), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=utc_now(), nullable=False
    )


class Notification(Base):
    """Something a user should notice (a mention); `conversation_id`/`message_id` link it to its source."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_conversation", "user_id", "conversation_id"),
        Index("ix_notifications_message_id", "message_id"),
        Index("ix_notifications_user_created", "user_id", "created_at", "id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    title: Mapped[str] = mapped_column(String(NOTIFICATION_TITLE_MAX), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID(length=16), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        GUID(length=16), ForeignKey("messages.id", ondelete="CASCADE"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=utc_now(), nullable=False
    )
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
