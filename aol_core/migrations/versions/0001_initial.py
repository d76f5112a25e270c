"""AOL's initial schema: actions, execution logs, artifacts, control, workers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aol_core.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
CLAIMABLE = sa.text("status IN ('PENDING','RETRY')")
RUNNING = sa.text("status = 'RUNNING'")


def upgrade() -> None:
    op.create_table(
        "aol_actions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.Column("fencing_token", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("result", JSON),
        sa.Column("proof_mode", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.CheckConstraint(
            "status IN ('PENDING','RUNNING','RETRY','SUCCESS','FAILED','DLQ','CANCELLED')",
            name=op.f("ck_aol_actions_status"),
        ),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("ck_aol_actions_max_attempts")),
        sa.PrimaryKeyConstraint("id", name="pk_aol_actions"),
        sa.UniqueConstraint("idempotency_key", name="uq_aol_actions_idempotency_key"),
    )
    op.create_index(
        "ix_aol_actions_claim", "aol_actions", [sa.text("priority DESC"), "not_before", "id"],
        sqlite_where=CLAIMABLE, postgresql_where=CLAIMABLE,
    )
    op.create_index(
        "ix_aol_actions_lease", "aol_actions", ["lease_expires_at"],
        sqlite_where=RUNNING, postgresql_where=RUNNING,
    )

    op.create_table(
        "aol_execution_logs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("action_id", ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("worker", sa.String(255)),
        sa.Column("artifact_ref", sa.String(512)),
        sa.Column("artifact_sha256", sa.String(64)),
        sa.CheckConstraint(
            "level IN ('DEBUG','INFO','WARNING','ERROR','CRITICAL')",
            name=op.f("ck_aol_execution_logs_level"),
        ),
        sa.ForeignKeyConstraint(
            ["action_id"], ["aol_actions.id"], ondelete="CASCADE",
            name="fk_aol_execution_logs_action_id_aol_actions",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_aol_execution_logs"),
    )
    op.create_index("ix_aol_execution_logs_action_id", "aol_execution_logs", ["action_id"])

    op.create_table(
        "aol_artifacts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("action_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"], ["aol_actions.id"], ondelete="CASCADE",
            name="fk_aol_artifacts_action_id_aol_actions",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_aol_artifacts"),
        sa.UniqueConstraint("action_id", "name", name="uq_aol_artifacts_action_name"),
    )

    control = op.create_table(
        "aol_control",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("killed", sa.Boolean(), nullable=False),
        sa.Column("proof_mode", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_aol_control_single_row")),
        sa.PrimaryKeyConstraint("id", name="pk_aol_control"),
    )
    op.bulk_insert(
        control,
        [{"id": 1, "paused": False, "killed": False, "proof_mode": False,
          "updated_at": datetime.now(UTC)}],
    )

    op.create_table(
        "aol_workers",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("versions", JSON, nullable=False),
        sa.Column("action_types", JSON, nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat", UTCDateTime(), nullable=False),
        sa.Column("alive_until", UTCDateTime(), nullable=False),
        sa.Column("stopped_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("name", name="pk_aol_workers"),
    )


def downgrade() -> None:
    for table in ("aol_workers", "aol_control", "aol_artifacts", "aol_execution_logs",
                  "aol_actions"):
        op.drop_table(table)
