"""Scale hygiene: the claim index leads with the action type, finished history has an index
for pruning, one worker prunes per period, and pruned actions' idempotency keys are kept.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aol_core.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CLAIMABLE = sa.text("status IN ('PENDING','RETRY')")
FINISHED = sa.text("status IN ('SUCCESS','FAILED','DLQ','CANCELLED')")


def upgrade() -> None:
    op.drop_index("ix_aol_actions_claim", "aol_actions")
    op.create_index(
        "ix_aol_actions_claim", "aol_actions",
        ["action_type", sa.text("priority DESC"), "not_before", "id", "status"],
        sqlite_where=CLAIMABLE, postgresql_where=CLAIMABLE,
    )
    op.create_index(
        "ix_aol_actions_finished", "aol_actions", ["finished_at", "id"],
        sqlite_where=FINISHED, postgresql_where=FINISHED,
    )
    with op.batch_alter_table("aol_control") as control:
        control.add_column(sa.Column("last_pruned_at", UTCDateTime()))
    op.create_table(
        "aol_pruned_keys",
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("action_id", ID, nullable=False),
        sa.Column("action_type", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_aol_pruned_keys"),
    )
    op.create_index("ix_aol_pruned_keys_finished_at", "aol_pruned_keys", ["finished_at"])


def downgrade() -> None:
    op.drop_table("aol_pruned_keys")
    with op.batch_alter_table("aol_control") as control:
        control.drop_column("last_pruned_at")
    op.drop_index("ix_aol_actions_finished", "aol_actions")
    op.drop_index("ix_aol_actions_claim", "aol_actions")
    op.create_index(
        "ix_aol_actions_claim", "aol_actions", [sa.text("priority DESC"), "not_before", "id"],
        sqlite_where=CLAIMABLE, postgresql_where=CLAIMABLE,
    )
