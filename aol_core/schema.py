"""Creating and checking the schema: Alembic for AOL's tables, plugin tables alongside."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from aol_core.errors import SchemaNotCurrent
from aol_core.plugins import PluginRegistry

VERSION_TABLE = "aol_alembic_version"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(engine: Engine, registry: PluginRegistry | None = None) -> list[str]:
    """Bring AOL's tables to the newest revision and create missing plugin tables.

    Returns the names of the tables that did not exist before.
    """
    before = set(inspect(engine).get_table_names())
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    if registry is not None:
        for metadata in registry.schemas():
            metadata.create_all(engine, checkfirst=True)
    return sorted(set(inspect(engine).get_table_names()) - before)


def require_current(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no AOL tables" if current is None else f"is at revision {current}, not {head}"
        raise SchemaNotCurrent(f"the database {state}; run: aol db upgrade")
