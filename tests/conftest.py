"""Fixtures for AOL's own tests. Database fixtures come from ``aol_core.testing`` and run
every test that uses them on SQLite and on PostgreSQL.

The suite loads only the ``aol-test-actions`` plugin (tests/plugins/), installed into the test
environment and found through the ``aicmo.actions`` entry point group like any other.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aol_core import schema
from aol_core.config import Settings
from aol_core.db import create_engine, session_factory
from aol_core.plugins import PluginRegistry, forget_installed, load_plugins
from aol_core.testing import ActionHarness

TEST_PLUGIN = "aol-test-actions"


@pytest.fixture(autouse=True)
def _only_the_test_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load only the test plugin, whatever else is installed; retry without waiting.

    Set in the environment, so ``aol`` child processes started by a test see it too.
    """
    monkeypatch.setenv("AOL_PLUGINS", TEST_PLUGIN)
    monkeypatch.delenv("AOL_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("AOL_RETRY_BASE_SECONDS", "0")
    forget_installed()
    yield
    forget_installed()


@pytest.fixture(scope="session")
def registry() -> PluginRegistry:
    return load_plugins(Settings(plugins=(TEST_PLUGIN,)))


@pytest.fixture
def db_url(aol_database_url: str) -> str:
    return aol_database_url


@pytest.fixture
def engine(db_url: str, registry: PluginRegistry) -> Iterator[Engine]:
    engine = create_engine(db_url)
    schema.upgrade(engine, registry)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, retry_base_seconds=0, plugins=(TEST_PLUGIN,))


@pytest.fixture
def harness(engine: Engine, db_url: str, registry: PluginRegistry,
            settings: Settings) -> Iterator[ActionHarness]:
    harness = ActionHarness(db_url, registry=registry, settings=settings)
    yield harness
    harness.close()


@pytest.fixture
def tmp_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path where tests install throwaway plugin distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    before = set(sys.modules)
    yield site
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()
