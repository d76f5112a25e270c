"""Rate limits and concurrency caps: operators' overrides and the starts they count.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aol_core.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "aol_flow_limits",
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("rate_count", sa.Integer()),
        sa.Column("rate_seconds", sa.Float()),
        sa.Column("concurrency", sa.Integer()),
        sa.Column("key_field", sa.String(200)),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("action_type", name="pk_aol_flow_limits"),
    )
    op.create_table(
        "aol_flow_starts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("flow_key", sa.String(255), nullable=False),
        sa.Column("action_id", ID, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_aol_flow_starts"),
    )
    op.create_index("ix_aol_flow_starts_window", "aol_flow_starts",
                    ["action_type", "flow_key", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_aol_flow_starts_window", "aol_flow_starts")
    op.drop_table("aol_flow_starts")
    op.drop_table("aol_flow_limits")
