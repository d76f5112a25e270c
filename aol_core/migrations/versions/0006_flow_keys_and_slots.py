"""Flow keys and schedule slots on actions; a version number for operators' schedules.

Revision ID: 0006
Revises: 0005

* ``aol_actions.flow_key``: the key a per-key limit counts the action under, written at
  enqueue, and appended to the claim index, so the claim of a limited type skips the keys at
  their limit in SQL instead of reading them (actions enqueued before this revision have
  none: claims key them as they meet them).
* ``aol_actions.schedule_slot``: the slot an action was enqueued for by a schedule
  (``context.slot``).
* ``aol_control.schedules_version``: counts changes to operators' schedules, so workers read
  the definitions again only when it moved.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aol_core.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CLAIMABLE = sa.text("status IN ('PENDING','RETRY')")
CLAIM_COLUMNS: list[sa.TextClause | str] = [
    "action_type", sa.text("priority DESC"), "not_before", "id", "status"]


def _claim_index(columns: list[sa.TextClause | str]) -> None:
    op.drop_index("ix_aol_actions_claim", "aol_actions")
    op.create_index("ix_aol_actions_claim", "aol_actions", columns,
                    sqlite_where=CLAIMABLE, postgresql_where=CLAIMABLE)


def upgrade() -> None:
    op.add_column("aol_actions", sa.Column("flow_key", sa.String(255)))
    op.add_column("aol_actions", sa.Column("schedule_slot", UTCDateTime()))
    op.add_column("aol_control", sa.Column("schedules_version", sa.Integer(), nullable=False,
                                           server_default="0"))
    _claim_index([*CLAIM_COLUMNS, "flow_key"])


def downgrade() -> None:
    _claim_index(CLAIM_COLUMNS)
    # ALTER TABLE ... DROP COLUMN on both (SQLite 3.35+): rebuilding aol_actions on SQLite
    # would cascade-delete its log lines and artifacts (see 0004)
    op.execute("ALTER TABLE aol_control DROP COLUMN schedules_version")
    op.execute("ALTER TABLE aol_actions DROP COLUMN schedule_slot")
    op.execute("ALTER TABLE aol_actions DROP COLUMN flow_key")
