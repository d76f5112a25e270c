"""The content calendar: posts scheduled for a campaign, published through POST_SOCIAL.

``aol db adopt`` creates this release's tables (this one among them) and stamps them at
revision 0001, as revision 0002 explains; so the table is created only where it is missing.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from aol_core import JSONValue, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "campaign_ops_calendar_items"
ITEM_STATUSES = "'SCHEDULED', 'QUEUED', 'PUBLISHED', 'FAILED', 'HELD'"


def upgrade() -> None:
    if TABLE in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.Integer(),
                  sa.ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE",
                                name="fk_campaign_ops_calendar_items_campaign_id"),
                  nullable=False),
        sa.Column("platform", sa.String(50), nullable=False),
        sa.Column("account", sa.String(100), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("media", JSONValue, nullable=False),
        sa.Column("publish_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("post_action_id", sa.Integer(), nullable=True),
        sa.Column("remote_url", sa.String(2000), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(f"status IN ({ITEM_STATUSES})",
                           name="ck_campaign_ops_calendar_items_status"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_ops_calendar_items"),
    )
    op.create_index("ix_campaign_ops_calendar_items_status_publish", TABLE,
                    ["status", "publish_at"])
    op.create_index("ix_campaign_ops_calendar_items_campaign_publish", TABLE,
                    ["campaign_id", "publish_at"])


def downgrade() -> None:
    op.drop_table(TABLE)
