"""hardening: look-alike usernames, muted conversations, owner succession, notification pages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

from app.modules.accounts.policy import username_skeleton

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

logger = logging.getLogger("alembic.runtime.migration")

# The successor of an owner who goes: the longest-standing admin, else the longest-standing member
# (ties, such as the members a group was created with, broken by participant id).
SUCCESSOR = """
    SELECT id FROM conversation_participants
    WHERE conversation_id = OLD.conversation_id
    ORDER BY CASE role WHEN 'admin' THEN 0 ELSE 1 END, joined_at, id
    LIMIT 1
"""
NO_OWNER_LEFT = """
    NOT EXISTS (SELECT 1 FROM conversation_participants
                WHERE conversation_id = OLD.conversation_id AND role = 'owner')
"""
SUCCESSION_SQLITE = f"""
CREATE TRIGGER trg_participants_owner_succession
AFTER DELETE ON conversation_participants
WHEN OLD.role = 'owner'
BEGIN
    UPDATE conversation_participants SET role = 'owner'
    WHERE id = ({SUCCESSOR}) AND {NO_OWNER_LEFT};
END
"""  # noqa: S608 - built from the constants above only
SUCCESSION_POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION participants_owner_succession() RETURNS trigger AS $$
BEGIN
    UPDATE conversation_participants SET role = 'owner'
    WHERE id = ({SUCCESSOR}) AND {NO_OWNER_LEFT};
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""  # noqa: S608 - built from the constants above only
SUCCESSION_POSTGRESQL_TRIGGER = """
CREATE TRIGGER trg_participants_owner_succession
AFTER DELETE ON conversation_participants
FOR EACH ROW WHEN (OLD.role = 'owner')
EXECUTE FUNCTION participants_owner_succession()
"""


def _backfill_skeletons() -> None:
    """Each existing user's skeleton; of existing look-alikes only the oldest gets one (the rest keep
    their names, and NULL, which a unique index allows any number of times)."""
    users = sa.table(
        "users",
        sa.column("id"),
        sa.column("username", sa.String()),
        sa.column("username_skeleton", sa.String()),
        sa.column("created_at"),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.id, users.c.username).order_by(users.c.created_at, users.c.id))
    taken: set[str] = set()
    grandfathered = 0
    for user_id, username in rows.all():
        key = username_skeleton(username)
        if key in taken:
            grandfathered += 1
            continue
        taken.add(key)
        bind.execute(users.update().where(users.c.id == user_id).values(username_skeleton=key))
    if grandfathered:
        logger.warning(
            "%d existing usernames look like an older user's; they keep their names", grandfathered
        )


def upgrade() -> None:
    op.add_column("users", sa.Column("username_skeleton", sa.String(length=255), nullable=True))
    _backfill_skeletons()
    op.create_index("uq_users_username_skeleton", "users", ["username_skeleton"], unique=True)
    op.add_column(
        "conversation_participants", sa.Column("muted_at", DateTimeUTC(timezone=True), nullable=True)
    )
    op.create_index("ix_notifications_user_created", "notifications", ["user_id", "created_at", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SUCCESSION_POSTGRESQL_FUNCTION)
        op.execute(SUCCESSION_POSTGRESQL_TRIGGER)
    else:
        op.execute(SUCCESSION_SQLITE)


def downgrade() -> None:
    """Plain `ALTER TABLE … DROP COLUMN` (SQLite 3.35+): a batch copy of `users` would cascade deletes."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_participants_owner_succession ON conversation_participants")
        op.execute("DROP FUNCTION IF EXISTS participants_owner_succession()")
    else:
        op.execute("DROP TRIGGER IF EXISTS trg_participants_owner_succession")
    op.drop_index("ix_notifications_user_created", table_name="notifications")
    op.drop_column("conversation_participants", "muted_at")
    op.drop_index("uq_users_username_skeleton", table_name="users")
    op.drop_column("users", "username_skeleton")
