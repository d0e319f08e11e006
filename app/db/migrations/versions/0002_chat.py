"""chat: conversations, participants, messages, notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from app.core.db import utc_now

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The sender of a message has read it: advance their read cursor in the statement that stores it.
SENDER_READ_SQLITE = """
CREATE TRIGGER trg_messages_advance_sender_read AFTER INSERT ON messages
FOR EACH ROW WHEN NEW.sender_id IS NOT NULL
BEGIN
    UPDATE conversation_participants SET last_read_seq = NEW.seq
    WHERE conversation_id = NEW.conversation_id AND user_id = NEW.sender_id AND last_read_seq < NEW.seq;
END
"""
SENDER_READ_POSTGRESQL_FUNCTION = """
CREATE OR REPLACE FUNCTION messages_advance_sender_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversation_participants SET last_read_seq = NEW.seq
    WHERE conversation_id = NEW.conversation_id AND user_id = NEW.sender_id AND last_read_seq < NEW.seq;
    RETURN NULL;
END;
$$
"""
SENDER_READ_POSTGRESQL_TRIGGER = """
CREATE TRIGGER trg_messages_advance_sender_read AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.sender_id IS NOT NULL) EXECUTE FUNCTION messages_advance_sender_read()
"""


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    if nullable:
        return sa.Column(name, DateTimeUTC(timezone=True), nullable=True)
    return sa.Column(name, DateTimeUTC(timezone=True), server_default=utc_now(), nullable=False)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "conversations",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("created_by", GUID(length=16), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("direct_key", sa.String(length=73), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_conversations_created_by_users"), ondelete="SET NULL"
        ),
        sa.UniqueConstraint("direct_key", name=op.f("uq_conversations_direct_key")),
    )
    op.create_table(
        "conversation_participants",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("conversation_id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("last_read_seq", sa.BigInteger(), server_default="0", nullable=False),
        _timestamp("joined_at"),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_participants")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_participants_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_conversation_participants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "conversation_id", "user_id", name=op.f("uq_conversation_participants_conversation_user")
        ),
    )
    op.create_index(
        "ix_conversation_participants_user_conversation",
        "conversation_participants",
        ["user_id", "conversation_id"],
    )
    op.create_table(
        "messages",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("conversation_id", GUID(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("sender_id", GUID(length=16), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("client_msg_id", sa.String(length=64), nullable=True),
        _timestamp("created_at"),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"], ["users.id"], name=op.f("fk_messages_sender_id_users"), ondelete="SET NULL"
        ),
        sa.UniqueConstraint("conversation_id", "seq", name=op.f("uq_messages_conversation_seq")),
        sa.UniqueConstraint(
            "conversation_id",
            "sender_id",
            "client_msg_id",
            name=op.f("uq_messages_conversation_sender_client_msg"),
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("conversation_id", GUID(length=16), nullable=True),
        sa.Column("message_id", GUID(length=16), nullable=True),
        _timestamp("created_at"),
        _timestamp("read_at", nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_notifications_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_notifications_message_id_messages"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_notifications_user_conversation", "notifications", ["user_id", "conversation_id"])
    op.create_index("ix_notifications_message_id", "notifications", ["message_id"])
    if postgresql:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_messages_body_trgm",
            "messages",
            ["body"],
            postgresql_using="gin",
            postgresql_ops={"body": "gin_trgm_ops"},
        )
        op.execute(SENDER_READ_POSTGRESQL_FUNCTION)
        op.execute(SENDER_READ_POSTGRESQL_TRIGGER)
    else:
        op.execute(SENDER_READ_SQLITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_messages_advance_sender_read ON messages")
        op.execute("DROP FUNCTION IF EXISTS messages_advance_sender_read()")
        op.drop_index("ix_messages_body_trgm", table_name="messages")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_messages_advance_sender_read")
    op.drop_index("ix_notifications_message_id", table_name="notifications")
    op.drop_index("ix_notifications_user_conversation", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("messages")
    op.drop_index("ix_conversation_participants_user_conversation", table_name="conversation_participants")
    op.drop_table("conversation_participants")
    op.drop_table("conversations")
