"""aol-campaign-ops' first tables: campaigns, tasks, metrics and the audit log.

Exactly what ``aol_schema`` created before the plugin had migrations; a database holding
those tables already is stamped at this revision instead.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from aol_core import JSONValue, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TASK_TYPES = "'POST', 'ENGAGE', 'FOLLOW_UP', 'REVIEW', 'ANALYZE', 'MANUAL'"
TASK_STATUSES = "'PENDING', 'DUE', 'OVERDUE', 'DONE', 'MISSED', 'BLOCKED'"
CAMPAIGN_STATUSES = "'ACTIVE', 'PAUSED', 'ENDED'"


def _campaign_id(table: str) -> sa.Column[int]:
    return sa.Column(
        "campaign_id", sa.Integer(),
        sa.ForeignKey("campaign_ops_campaigns.id", ondelete="CASCADE",
                      name=f"fk_{table}_campaign_id_campaign_ops_campaigns"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "campaign_ops_campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(f"status IN ({CAMPAIGN_STATUSES})",
                           name="ck_campaign_ops_campaigns_status"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_ops_campaigns"),
    )
    op.create_table(
        "campaign_ops_tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _campaign_id("campaign_ops_tasks"),
        sa.Column("task_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("escalated_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("details", JSONValue, nullable=False),
        sa.Column("source_key", sa.String(255), nullable=True),
        sa.CheckConstraint(f"task_type IN ({TASK_TYPES})", name="ck_campaign_ops_tasks_task_type"),
        sa.CheckConstraint(f"status IN ({TASK_STATUSES})", name="ck_campaign_ops_tasks_status"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_ops_tasks"),
        sa.UniqueConstraint("source_key", name="uq_campaign_ops_tasks_source_key"),
    )
    op.create_index("ix_campaign_ops_tasks_campaign_status", "campaign_ops_tasks",
                    ["campaign_id", "status"])
    op.create_index("ix_campaign_ops_tasks_campaign_due", "campaign_ops_tasks",
                    ["campaign_id", "due_at"])
    op.create_table(
        "campaign_ops_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _campaign_id("campaign_ops_metrics"),
        sa.Column("platform", sa.String(50), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("impressions", sa.Integer(), nullable=False),
        sa.Column("engagement", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.CheckConstraint("impressions >= 0 AND engagement >= 0 AND clicks >= 0",
                           name="ck_campaign_ops_metrics_non_negative"),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_ops_metrics"),
    )
    op.create_index("ix_campaign_ops_metrics_campaign_recorded", "campaign_ops_metrics",
                    ["campaign_id", "recorded_at"])
    op.create_table(
        "campaign_ops_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _campaign_id("campaign_ops_audit_log"),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("before", JSONValue, nullable=True),
        sa.Column("after", JSONValue, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_ops_audit_log"),
    )
    op.create_index("ix_campaign_ops_audit_log_campaign_id", "campaign_ops_audit_log",
                    ["campaign_id"])


def downgrade() -> None:
    for table in ("campaign_ops_audit_log", "campaign_ops_metrics", "campaign_ops_tasks",
                  "campaign_ops_campaigns"):
        op.drop_table(table)
