"""Plugin tables that evolve: each plugin's Alembic chain beside the core's, applied by one
``aol db upgrade`` that several machines may run at once, and reported by ``aol db status``
and ``aol health``."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from aol_core import schema
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.health import check_health
from aol_core.plugins import PluginRegistry, load_plugins
from aol_core.testing import assert_migrations_match_models
from helpers import aol, install, on_path

SCHEMA = """
from pathlib import Path

from aol_core import hookimpl
from sqlalchemy import Column, Integer, MetaData, Table

metadata = MetaData()
Table("acme_ledger_entries", metadata, Column("id", Integer, primary_key=True),
      Column("amount", Integer, nullable=False))

@hookimpl
def aol_schema():
    return metadata
"""

PLUGIN = SCHEMA + """
@hookimpl
def aol_migrations():
    return Path(__file__).parent / "acme_ledger_migrations"
"""

FIRST = '''
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

def upgrade():
    op.create_table("acme_ledger_entries", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("amount", sa.Integer, nullable=False))
'''

#: the plugin's next release: a column every existing row gets a value for
SECOND = '''
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

def upgrade():
    op.add_column("acme_ledger_entries", sa.Column("currency", sa.String(3)))
    op.execute("UPDATE acme_ledger_entries SET currency = 'EUR'")
'''


def ledger_plugin(site: Path, *revisions: str) -> None:
    install(site, "acme-ledger", "1.0", "acme_ledger", PLUGIN)
    release(site, *revisions)


def release(site: Path, *revisions: str) -> None:
    directory = site / "acme_ledger_migrations"
    directory.mkdir(exist_ok=True)
    for number, source in enumerate(revisions, start=1):
        (directory / f"{number:04d}_ledger.py").write_text(textwrap.dedent(source))


def ledger_registry() -> PluginRegistry:
    return load_plugins(Settings(plugins=("acme-ledger", "aol-test-actions")))


def test_upgrade_applies_a_plugins_migrations_in_its_own_version_table(
    tmp_site: Path, db_url: str
) -> None:
    ledger_plugin(tmp_site, FIRST)
    engine = create_engine(db_url)
    created = schema.upgrade(engine, ledger_registry())
    assert {"acme_ledger_entries", "acme_ledger_alembic_version"} <= set(created)
    assert schema.current_revision(engine) == schema.HEAD_REVISION
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM acme_ledger_alembic_version")) == "0001"
    engine.dispose()


def test_a_plugin_upgrade_adding_a_column_migrates_existing_rows(
    tmp_site: Path, db_url: str
) -> None:
    ledger_plugin(tmp_site, FIRST)
    engine = create_engine(db_url)
    schema.upgrade(engine, ledger_registry())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO acme_ledger_entries (amount) VALUES (5), (7)"))

    release(tmp_site, FIRST, SECOND)
    registry = ledger_registry()
    (ledger,) = [c for c in schema.status(engine, registry) if c.name == "acme-ledger"]
    assert (ledger.current, ledger.head, ledger.behind) == ("0001", "0002", True)
    schema.upgrade(engine, registry)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT amount, currency FROM acme_ledger_entries "
                                 "ORDER BY amount")).all()
    assert [tuple(r) for r in rows] == [(5, "EUR"), (7, "EUR")]
    assert not any(c.behind for c in schema.status(engine, registry))
    engine.dispose()


def test_health_fails_while_a_plugin_is_behind(tmp_site: Path, db_url: str) -> None:
    ledger_plugin(tmp_site, FIRST)
    engine = create_engine(db_url)
    schema.upgrade(engine, ledger_registry())
    release(tmp_site, FIRST, SECOND)
    report = check_health(engine, ledger_registry())
    failed = {c.name: c.detail for c in report.checks if not c.ok}
    assert failed["plugin tables current"] == (
        "acme-ledger at 0001, expected 0002: run aol db upgrade")
    engine.dispose()


def test_a_worker_refuses_to_start_while_a_plugin_is_behind(tmp_site: Path,
                                                            db_url: str) -> None:
    ledger_plugin(tmp_site, FIRST)
    env = on_path(tmp_site, AOL_PLUGINS="acme-ledger,aol-test-actions")
    assert aol("db", "upgrade", db_url=db_url, env=env).returncode == 0
    release(tmp_site, FIRST, SECOND)
    refused = aol("worker", "--burst", db_url=db_url, env=env)
    assert (refused.returncode, refused.stderr.strip()) == (
        1, "aol: error: the tables of acme-ledger are not at the plugin's newest revision; "
           "run: aol db upgrade")
    assert aol("db", "upgrade", db_url=db_url, env=env).returncode == 0
    assert aol("worker", "--burst", db_url=db_url, env=env).returncode == 0


def test_db_status_shows_each_component_and_exits_1_while_one_is_behind(
    tmp_site: Path, db_url: str
) -> None:
    ledger_plugin(tmp_site, FIRST)
    env = on_path(tmp_site, AOL_PLUGINS="acme-ledger,aol-test-actions")
    assert aol("db", "upgrade", db_url=db_url, env=env).returncode == 0
    release(tmp_site, FIRST, SECOND)
    behind = aol("db", "status", "--json", db_url=db_url, env=env)
    assert behind.returncode == 1
    assert {c["component"]: (c["current"], c["head"], c["behind"])
            for c in json.loads(behind.stdout)} == {
        "aol-core": (schema.HEAD_REVISION, schema.HEAD_REVISION, False),
        "acme-ledger": ("0001", "0002", True),
        "aol-test-actions": (None, None, False),  # aol_schema only: tables all there
    }
    upgraded = aol("db", "upgrade", db_url=db_url, env=env)
    assert "acme-ledger: revision 0002" in upgraded.stdout
    current = aol("db", "status", db_url=db_url, env=env)
    assert current.returncode == 0, current.stdout
    assert "behind" not in current.stdout


def release_0_9_with_an_entry(tmp_site: Path, db_url: str) -> Engine:
    """A database made by the plugin's release 0.9 (tables from ``aol_schema``, no
    migrations) holding one entry; then 0.9 is uninstalled, for a later release to follow."""
    install(tmp_site, "acme-ledger", "0.9", "acme_ledger_old", SCHEMA)
    engine = create_engine(db_url)
    schema.upgrade(engine, load_plugins(Settings(plugins=("acme-ledger",))))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO acme_ledger_entries (amount) VALUES (3)"))
    shutil.rmtree(tmp_site / "acme_ledger-0.9.dist-info")
    importlib.invalidate_caches()
    return engine


def test_tables_created_before_a_plugin_had_migrations_are_adopted(
    tmp_site: Path, db_url: str
) -> None:
    engine = release_0_9_with_an_entry(tmp_site, db_url)
    ledger_plugin(tmp_site, FIRST, SECOND)
    schema.upgrade(engine, ledger_registry())
    with engine.connect() as conn:
        row = conn.execute(text("SELECT amount, currency FROM acme_ledger_entries")).one()
    assert tuple(row) == (3, "EUR")
    engine.dispose()


#: the plugin's release after that: a table of its own, in the models and revision 0002
WITH_ACCOUNTS = PLUGIN.replace('@hookimpl\ndef aol_schema', '''
Table("acme_ledger_accounts", metadata, Column("id", Integer, primary_key=True))

@hookimpl
def aol_schema''', 1)

ACCOUNTS = '''
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

def upgrade():
    op.create_table("acme_ledger_accounts", sa.Column("id", sa.Integer, primary_key=True))
'''


def test_tables_made_before_migrations_are_adopted_when_a_later_revision_adds_a_table(
    tmp_site: Path, db_url: str
) -> None:
    engine = release_0_9_with_an_entry(tmp_site, db_url)
    install(tmp_site, "acme-ledger", "1.1", "acme_ledger", WITH_ACCOUNTS)
    release(tmp_site, FIRST, ACCOUNTS)
    schema.upgrade(engine, ledger_registry())
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT amount FROM acme_ledger_entries")) == 3
        assert conn.scalar(text("SELECT version_num FROM acme_ledger_alembic_version")) == "0002"
    assert "acme_ledger_accounts" in inspect(engine).get_table_names()
    engine.dispose()


def test_an_upgrade_without_a_plugin_leaves_its_tables_alone(tmp_site: Path,
                                                             db_url: str) -> None:
    ledger_plugin(tmp_site, FIRST)
    engine = create_engine(db_url)
    schema.upgrade(engine, ledger_registry())
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO acme_ledger_entries (amount) VALUES (1)"))
    schema.upgrade(engine, load_plugins(Settings(plugins=("aol-test-actions",))))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM acme_ledger_entries")) == 1
        assert conn.scalar(text("SELECT version_num FROM acme_ledger_alembic_version")) == "0001"
    engine.dispose()


def test_concurrent_upgrades_from_several_processes_all_succeed(
    tmp_site: Path, db_url: str
) -> None:
    ledger_plugin(tmp_site, FIRST, SECOND)
    env = on_path(tmp_site, AOL_PLUGINS="acme-ledger,aol-test-actions")
    runs = [subprocess.Popen([sys.executable, "-m", "aol_core.cli", "--db", db_url, "db",
                              "upgrade"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, **env})
            for _ in range(3)]
    outcomes = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "")
                for run in runs]
    for run in runs:
        for stream in (run.stdout, run.stderr):
            if stream:
                stream.close()
    assert [code for code, _ in outcomes] == [0, 0, 0], outcomes
    engine = create_engine(db_url)
    try:
        assert not any(c.behind for c in schema.status(engine, ledger_registry()))
        assert "acme_ledger_entries" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_the_kits_migration_check_passes_when_the_revisions_create_the_models(
    tmp_site: Path, db_url: str
) -> None:
    ledger_plugin(tmp_site, FIRST)
    models = importlib.import_module("acme_ledger").metadata
    assert_migrations_match_models(db_url, "acme-ledger", models)


def test_the_kits_migration_check_names_a_column_no_revision_creates(
    tmp_site: Path, db_url: str
) -> None:
    install(tmp_site, "acme-ledger", "1.0", "acme_ledger", PLUGIN.replace(
        'Column("amount", Integer, nullable=False))',
        'Column("amount", Integer, nullable=False), Column("note", Integer))'))
    release(tmp_site, FIRST)
    models = importlib.import_module("acme_ledger").metadata
    with pytest.raises(AssertionError, match=r"acme-ledger's migrations do not create its "
                                             r"models: .*'add_column'.*note"):
        assert_migrations_match_models(db_url, "acme-ledger", models)
