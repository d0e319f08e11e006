"""sender read per statement: on PostgreSQL, one update of the senders' read cursors per INSERT

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Migration 0002's trigger advances the sender's `last_read_seq` once for each message inserted. A
batch of messages is inserted by one statement, so on PostgreSQL the trigger now runs once for the
statement and reads the inserted rows from its transition table: one `UPDATE` per batch, each
participant's row updated once to the highest seq of their messages (a hot conversation's batch
updated the same row once per message, each leaving a dead row version). SQLite has no statement
triggers and keeps 0002's.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SENDERS_READ_FUNCTION = """
CREATE OR REPLACE FUNCTION messages_advance_senders_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversation_participants AS participant SET last_read_seq = sent.seq
    FROM (
        SELECT conversation_id, sender_id, max(seq) AS seq FROM inserted_messages
        WHERE sender_id IS NOT NULL
        GROUP BY conversation_id, sender_id
    ) AS sent
    WHERE participant.conversation_id = sent.conversation_id AND participant.user_id = sent.sender_id
    AND participant.last_read_seq < sent.seq;
    RETURN NULL;
END;
$$
"""
SENDERS_READ_TRIGGER = """
CREATE TRIGGER trg_messages_advance_senders_read AFTER INSERT ON messages
REFERENCING NEW TABLE AS inserted_messages
FOR EACH STATEMENT EXECUTE FUNCTION messages_advance_senders_read()
"""
SENDER_READ_FUNCTION = """
CREATE OR REPLACE FUNCTION messages_advance_sender_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversation_participants SET last_read_seq = NEW.seq
    WHERE conversation_id = NEW.conversation_id AND user_id = NEW.sender_id AND last_read_seq < NEW.seq;
    RETURN NULL;
END;
$$
"""
SENDER_READ_TRIGGER = """
CREATE TRIGGER trg_messages_advance_sender_read AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.sender_id IS NOT NULL) EXECUTE FUNCTION messages_advance_sender_read()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS trg_messages_advance_sender_read ON messages")
    op.execute("DROP FUNCTION IF EXISTS messages_advance_sender_read()")
    op.execute(SENDERS_READ_FUNCTION)
    op.execute(SENDERS_READ_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS trg_messages_advance_senders_read ON messages")
    op.execute("DROP FUNCTION IF EXISTS messages_advance_senders_read()")
    op.execute(SENDER_READ_FUNCTION)
    op.execute(SENDER_READ_TRIGGER)
