"""game scores

The first revision of the game module's own branch (label `game`); it needs Parley's users table.

Revision ID: game_0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

from app.core.db import utc_now

revision = "game_0001"
down_revision = None
branch_labels = ("game",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "game_scores",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("room", sa.String(length=128), nullable=False),
        sa.Column("user_id", GUID(length=16), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), server_default=utc_now(), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), server_default=utc_now(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_game_scores_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game_scores")),
    )
    op.create_index("ix_game_scores_room", "game_scores", ["room"])


def downgrade() -> None:
    op.drop_index("ix_game_scores_room", table_name="game_scores")
    op.drop_table("game_scores")
