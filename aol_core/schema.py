"""Creating and checking the schema: Alembic for AOL's tables, plugin tables alongside."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from aol_core.errors import SchemaNotCurrent
from aol_core.plugins import PluginRegistry

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "aol_alembic_version"

#: the newest migration; a test checks it against Alembic's head, so commands that only
#: need to know whether the schema is current do not pay for importing Alembic
HEAD_REVISION = "0002"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    if VERSION_TABLE not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        revision = conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return None if revision is None else str(revision)


def upgrade(engine: Engine, registry: PluginRegistry | None = None) -> list[str]:
    """Bring AOL's tables to the newest revision and create missing plugin tables.

    Returns the names of the tables that did not exist before.
    """
    from alembic import command

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
    current, head = current_revision(engine), HEAD_REVISION
    if current != head:
        state = "has no AOL tables" if current is None else f"is at revision {current}, not {head}"
        raise SchemaNotCurrent(f"the database {state}; run: aol db upgrade")
