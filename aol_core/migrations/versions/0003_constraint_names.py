"""CHECK constraints get the names the models give them (``ck_aol_actions_status``).

Revision 0001 named them explicitly while the naming convention also wrapped them, so
databases created by it hold ``ck_aol_actions_ck_aol_actions_status``; 0001 now names them
right, and this revision renames them in databases created before.

PostgreSQL renames a constraint in place. SQLite has no statement for it, and batch mode
(copy the table, drop the old one) is unsafe here: dropping ``aol_actions`` under
``foreign_keys=ON``, which cannot be switched off inside the migration's transaction,
deletes every execution log and artifact through their ON DELETE CASCADE, and the copy
loses the DESC of the claim index. A constraint's name changes nothing stored on disk,
so the table's definition in ``sqlite_master`` is edited instead, following SQLite's
documented procedure for such changes (writable_schema and a new schema_version).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: the CHECK constraints 0001 created, by table, as the models name them
CHECKS = {
    "aol_actions": ("ck_aol_actions_status", "ck_aol_actions_max_attempts"),
    "aol_execution_logs": ("ck_aol_execution_logs_level",),
    "aol_control": ("ck_aol_control_single_row",),
}


def upgrade() -> None:
    conn = op.get_bind()
    inspector = sa.inspect(conn)
    for table, names in CHECKS.items():
        present = {check["name"] for check in inspector.get_check_constraints(table)}
        for name in names:
            doubled = f"ck_{table}_{name}"
            if doubled in present:
                _rename(conn, table, doubled, name)


def _rename(conn: sa.Connection, table: str, old: str, new: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{old}" TO "{new}"')
        return
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema=ON")
    try:
        conn.execute(
            sa.text(
                "UPDATE sqlite_master SET sql = replace(sql, :old, :new) "
                "WHERE type = 'table' AND name = :table"
            ),
            {"old": f"CONSTRAINT {old} CHECK", "new": f"CONSTRAINT {new} CHECK", "table": table},
        )
        conn.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    finally:
        conn.exec_driver_sql("PRAGMA writable_schema=OFF")


def downgrade() -> None:
    """Nothing to undo: 0001 creates these names too."""
