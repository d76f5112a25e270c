"""The plugin's tables come from its Alembic revisions, which create exactly its models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from aol_core import schema, utcnow
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.plugins import load_plugins
from sqlalchemy import Engine, text

from aol_social import store

ONLY_THIS_PLUGIN = Settings(plugins=("aol-social",))


def differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, kind, _: kind != "table" or name in store.metadata.tables})
        return list(compare_metadata(context, store.metadata))


def test_the_first_revision_creates_exactly_the_models(aol_database_url: str) -> None:
    engine = create_engine(aol_database_url)
    try:
        schema.upgrade(engine, load_plugins(ONLY_THIS_PLUGIN))
        assert differences(engine) == []
        revisions = {c.name: c.current for c in schema.status(engine, load_plugins(
            ONLY_THIS_PLUGIN))}
        assert revisions["aol-social"] == "0001"
    finally:
        engine.dispose()


def test_tables_made_before_migrations_are_adopted_with_their_rows(
    aol_database_url: str,
) -> None:
    engine = create_engine(aol_database_url)
    try:
        schema.upgrade(engine)
        store.metadata.create_all(engine)  # what aol db upgrade did before the migrations
        with engine.begin() as conn:
            conn.execute(store.bluesky_sessions.insert().values(
                account="bluesky", updated_at=utcnow()))
        schema.upgrade(engine, load_plugins(ONLY_THIS_PLUGIN))
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT account FROM aol_social_bluesky_sessions")) == (
                "bluesky")
            assert conn.scalar(text(
                "SELECT version_num FROM aol_social_alembic_version")) == "0001"
    finally:
        engine.dispose()
