"""Campaigns gain an owner e-mail, a time zone and start and end dates.

Tables created by ``aol db adopt`` (which creates this release's tables) already have the
columns, and are stamped at revision 0001 all the same; so this revision adds only the
columns a table lacks.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLE = "campaign_ops_campaigns"
DATES_IN_ORDER = "ck_campaign_ops_campaigns_dates_in_order"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {column["name"] for column in inspector.get_columns(TABLE)}
    checks = {check["name"] for check in inspector.get_check_constraints(TABLE)}
    columns: list[sa.Column[object]] = [
        sa.Column("owner_email", sa.String(320), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
    ]
    with op.batch_alter_table(TABLE) as batch:
        for column in columns:
            if column.name not in present:
                batch.add_column(column)
        if DATES_IN_ORDER not in checks:
            batch.create_check_constraint(
                DATES_IN_ORDER, "ends_on IS NULL OR starts_on IS NULL OR ends_on >= starts_on")


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_constraint(DATES_IN_ORDER, type_="check")
        for name in ("ends_on", "starts_on", "timezone", "owner_email"):
            batch.drop_column(name)
