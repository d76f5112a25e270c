"""The plugin's tables come from its Alembic revisions, which create exactly its models."""

from __future__ import annotations

from aol_core import schema, utcnow
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.plugins import load_plugins
from aol_core.testing import assert_migrations_match_models
from sqlalchemy import text

from aol_social import store

ONLY_THIS_PLUGIN = Settings(plugins=("aol-social",))


def test_the_first_revision_creates_exactly_the_models(aol_database_url: str) -> None:
    assert_migrations_match_models(aol_database_url, "aol-social", store.metadata)


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
