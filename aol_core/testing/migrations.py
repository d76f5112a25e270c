"""A check every plugin with migrations needs: its Alembic revisions, applied to an empty
database, create exactly the tables its models describe (no missing column, no type that
differs), so the models and the migrations cannot drift apart."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from aol_core import schema
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.models import Base
from aol_core.plugins import load_plugins


def assert_migrations_match_models(database_url: str, distribution: str,
                                   metadata: MetaData) -> None:
    """Upgrade the empty database at ``database_url`` with ``distribution`` as the only plugin,
    then fail naming each difference between the tables there and ``metadata``, or if the
    plugin's revision is not its head afterwards."""
    registry = load_plugins(Settings(database_url=database_url, plugins=(distribution,)))
    assert registry.loaded, f"{distribution} is not installed (or failed to load)"
    name = registry.loaded[0].distribution
    # every table there but the core's: one the revisions make and no model declares is named
    not_the_plugins = {*Base.metadata.tables, schema.VERSION_TABLE,
                       schema.plugin_version_table(name)}
    engine = create_engine(database_url)
    try:
        schema.upgrade(engine, registry)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={
                "compare_type": True,
                "include_name": lambda table, kind, _parent: (
                    kind != "table" or table not in not_the_plugins)})
            differences = compare_metadata(context, metadata)
        (component,) = [c for c in schema.status(engine, registry) if c.name == name]
    finally:
        engine.dispose()
    assert differences == [], (
        f"{distribution}'s migrations do not create its models: {differences}; add a revision "
        "that makes the tables match")
    assert not component.behind, (
        f"{distribution} is at revision {component.current} after upgrade, not its head "
        f"{component.head}")
