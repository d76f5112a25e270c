"""The plugin's tables come from its Alembic revisions, which create exactly its models."""

from __future__ import annotations

from aol_core import schema
from aol_core.config import Settings
from aol_core.db import create_engine, session_factory
from aol_core.plugins import load_plugins
from aol_core.testing import assert_migrations_match_models
from sqlalchemy import text

from aol_campaign_ops.api import create_campaign
from aol_campaign_ops.models import metadata

ONLY_THIS_PLUGIN = Settings(plugins=("aol-campaign-ops",))


def test_the_first_revision_creates_exactly_the_models(aol_database_url: str) -> None:
    assert_migrations_match_models(aol_database_url, "aol-campaign-ops", metadata)


def test_tables_made_before_migrations_are_adopted_with_their_rows(
    aol_database_url: str,
) -> None:
    engine = create_engine(aol_database_url)
    schema.upgrade(engine)
    metadata.create_all(engine)  # what aol db upgrade did before the plugin had migrations
    with session_factory(engine)() as session, session.begin():
        create_campaign(session, "made before migrations")
    try:
        schema.upgrade(engine, load_plugins(ONLY_THIS_PLUGIN))
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT name FROM campaign_ops_campaigns")) == (
                "made before migrations")
            assert conn.scalar(text(
                "SELECT version_num FROM aol_campaign_ops_alembic_version")) == "0001"
    finally:
        engine.dispose()
