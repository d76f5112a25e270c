"""Alembic environment for AOL's own tables; run through ``aol db upgrade``."""

from __future__ import annotations

from alembic import context

from aol_core.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="aol_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
