"""The plugin's tables come from its Alembic revisions, which create exactly its models."""

from __future__ import annotations

import importlib

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from aol_core import schema
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.plugins import load_plugins
from aol_core.testing import assert_migrations_match_models
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from aol_campaign_ops.models import metadata

ONLY_THIS_PLUGIN = Settings(plugins=("aol-campaign-ops",))


def test_the_migrations_create_exactly_the_models(aol_database_url: str) -> None:
    assert_migrations_match_models(aol_database_url, "aol-campaign-ops", metadata)


def make_release_0_1_tables(engine: Engine) -> None:
    """The tables as release 0.1's ``aol_schema`` made them, before the plugin had
    migrations: exactly what revision 0001 creates, with one campaign in them."""
    initial = importlib.import_module("aol_campaign_ops.migrations.0001_campaign_ops_initial")
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        initial.upgrade()
        conn.execute(text("INSERT INTO campaign_ops_campaigns (name, status, created_at) "
                          "VALUES ('made before migrations', 'ACTIVE', CURRENT_TIMESTAMP)"))


def test_tables_made_before_migrations_are_adopted_with_their_rows(
    aol_database_url: str,
) -> None:
    engine = create_engine(aol_database_url)
    schema.upgrade(engine)
    make_release_0_1_tables(engine)
    try:
        schema.upgrade(engine, load_plugins(ONLY_THIS_PLUGIN))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name, timezone, owner_email FROM "
                                     "campaign_ops_campaigns")).one() == (
                "made before migrations", "UTC", None)
            assert conn.scalar(text(
                "SELECT version_num FROM aol_campaign_ops_alembic_version")) == "0003"
    finally:
        engine.dispose()


def test_campaign_dates_out_of_order_are_refused_by_the_database(
    aol_database_url: str,
) -> None:
    engine = create_engine(aol_database_url)
    schema.upgrade(engine, load_plugins(ONLY_THIS_PLUGIN))
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO campaign_ops_campaigns (name, status, created_at, timezone, "
                "starts_on, ends_on) VALUES ('backwards', 'ACTIVE', CURRENT_TIMESTAMP, 'UTC', "
                "'2030-02-01', '2030-01-01')"))
    finally:
        engine.dispose()
