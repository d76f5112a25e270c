"""Schedules (operator definitions and every schedule's state) and the HELD status.

Revision ID: 0004
Revises: 0003

SQLite cannot alter a CHECK constraint, and rebuilding ``aol_actions`` the usual way (copy,
drop, rename) would cascade-delete every log line and artifact while foreign keys are on.
Allowing one more status changes nothing stored, so on SQLite the table's definition is
edited in place, the procedure SQLite documents for such changes ("ALTER TABLE": making
other kinds of table schema changes).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from aol_core.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
OLD_STATUSES = "'PENDING','RUNNING','RETRY','SUCCESS','FAILED','DLQ','CANCELLED'"
NEW_STATUSES = OLD_STATUSES + ",'HELD'"
HELD = sa.text("status = 'HELD'")


def _allow_statuses(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        version = op.get_bind().exec_driver_sql("PRAGMA schema_version").scalar_one()
        op.execute("PRAGMA writable_schema=ON")
        op.execute(
            sa.text("UPDATE sqlite_master SET sql = replace(sql, :old, :new) "
                    "WHERE type = 'table' AND name = 'aol_actions'")
            .bindparams(old=f"status IN ({old})", new=f"status IN ({new})")
        )
        op.execute(f"PRAGMA schema_version={int(version) + 1}")
        op.execute("PRAGMA writable_schema=OFF")
    else:
        op.drop_constraint(op.f("ck_aol_actions_status"), "aol_actions", type_="check")
        op.create_check_constraint(
            op.f("ck_aol_actions_status"), "aol_actions", f"status IN ({new})"
        )


def upgrade() -> None:
    _allow_statuses(OLD_STATUSES, NEW_STATUSES)
    op.create_index("ix_aol_actions_held", "aol_actions", ["updated_at"],
                    sqlite_where=HELD, postgresql_where=HELD)
    op.create_table(
        "aol_schedules",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("cron", sa.String(200)),
        sa.Column("every_seconds", sa.Integer()),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("catch_up", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("(cron IS NULL) <> (every_seconds IS NULL)",
                           name=op.f("ck_aol_schedules_cron_or_every")),
        sa.CheckConstraint("catch_up IN ('latest','all','skip')",
                           name=op.f("ck_aol_schedules_catch_up")),
        sa.PrimaryKeyConstraint("name", name="pk_aol_schedules"),
    )
    op.create_table(
        "aol_schedule_state",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("covered_until", UTCDateTime(), nullable=False),
        sa.Column("last_slot", UTCDateTime()),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_aol_schedule_state"),
    )


def downgrade() -> None:
    op.drop_index("ix_aol_actions_held", "aol_actions")
    op.drop_table("aol_schedule_state")
    op.drop_table("aol_schedules")
    op.execute("UPDATE aol_actions SET status = 'FAILED' WHERE status = 'HELD'")
    _allow_statuses(NEW_STATUSES, OLD_STATUSES)
