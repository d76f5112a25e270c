"""aol-social's first tables: the publications (intent, then remote id and URL) and the
Bluesky sessions.

Exactly what ``aol_schema`` created before the plugin had migrations; a database holding
those tables already is stamped at this revision instead.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from aol_core import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aol_social_publications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("remote_key", sa.String(100), nullable=False),
        sa.Column("remote_id", sa.String(500), nullable=True),
        sa.Column("url", sa.String(1000), nullable=True),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_aol_social_publications"),
        sa.UniqueConstraint("idempotency_key",
                            name="uq_aol_social_publications_idempotency_key"),
    )
    op.create_table(
        "aol_social_bluesky_sessions",
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("did", sa.String(200), nullable=True),
        sa.Column("access_jwt", sa.Text(), nullable=True),
        sa.Column("refresh_jwt", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name="pk_aol_social_bluesky_sessions"),
    )


def downgrade() -> None:
    op.drop_table("aol_social_bluesky_sessions")
    op.drop_table("aol_social_publications")
