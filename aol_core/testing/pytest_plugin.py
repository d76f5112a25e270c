"""pytest fixtures for AOL and its plugin authors, registered through the ``pytest11`` entry point.

``aol_database_url`` runs each test that uses it on SQLite and on PostgreSQL; ``aol_harness``
runs actions through the real dispatch path, with the plugins ``aol_plugins`` names (override
that fixture to load only the plugin under test); ``aol_no_network`` fails a test whose code
opened a network connection; ``aol_clock`` fixes ``aol_core.utcnow()``. PostgreSQL
comes from ``AOL_TEST_POSTGRES_URL`` (default: the local server, database ``test``); each
test gets a schema of its own. An unreachable server skips with the reason, unless
``AOL_REQUIRE_POSTGRES=1`` (as in CI), which makes it an error. ``AOL_TEST_DATABASES``
(comma-separated: ``sqlite``, ``postgresql``) narrows the run to some of them. The ini
option ``aol_postgres = "when-configured"`` (what ``aol new-plugin`` writes) leaves
PostgreSQL out unless ``AOL_TEST_POSTGRES_URL`` or ``AOL_REQUIRE_POSTGRES`` is set.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from aol_core.config import Settings
from aol_core.db import mask_url, parse_url
from aol_core.plugins import load_plugins
from aol_core.testing import ActionHarness
from aol_core.testing.clock import FixedClock
from aol_core.testing.network import NetworkGuard

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("AOL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture(scope="session")
def aol_postgres_server() -> str:
    """The PostgreSQL URL, reachable (checked once per test session)."""
    url = postgres_url()
    engine = sa.create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        reason = (f"PostgreSQL unreachable at {mask_url(url)}: "
                  f"{type(exc).__name__}: {exc}").splitlines()[0]
        if _postgres_required():
            pytest.fail(f"{reason} (AOL_REQUIRE_POSTGRES is set)")
        pytest.skip(reason)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def aol_postgres_url(aol_postgres_server: str) -> Iterator[str]:
    """A URL whose connections see only a fresh schema of their own (dropped afterwards)."""
    schema = f"aol_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(parse_url(aol_postgres_server))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = parse_url(aol_postgres_server).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def aol_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aol-test.db'}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "aol_postgres",
        "when tests using aol_database_url also run on PostgreSQL: 'always' (the server at "
        "AOL_TEST_POSTGRES_URL, or the local default) or 'when-configured' (only when "
        "AOL_TEST_POSTGRES_URL or AOL_REQUIRE_POSTGRES is set)",
        default="always")


def _databases(config: pytest.Config) -> list[str]:
    chosen = os.environ.get("AOL_TEST_DATABASES", "sqlite,postgresql")
    names = [name.strip() for name in chosen.split(",") if name.strip()]
    unknown = set(names) - {"sqlite", "postgresql"}
    if unknown or not names:
        raise pytest.UsageError(f"AOL_TEST_DATABASES={chosen!r}: name sqlite, postgresql or "
                                "both, comma-separated")
    when = config.getini("aol_postgres")
    if when not in ("always", "when-configured"):
        raise pytest.UsageError(
            f"aol_postgres = {when!r}: expected 'always' or 'when-configured'")
    configured = bool(os.environ.get("AOL_TEST_POSTGRES_URL")) or _postgres_required()
    if when == "when-configured" and not configured:
        names = [name for name in names if name != "postgresql"]
    return names


def _postgres_required() -> bool:
    return os.environ.get("AOL_REQUIRE_POSTGRES", "") not in ("", "0")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``aol_database_url`` (directly or through another fixture)
    once per database; decided here rather than at import so the ini option applies."""
    if "aol_database_url" in metafunc.fixturenames:
        metafunc.parametrize("aol_database_url", _databases(metafunc.config), indirect=True)


@pytest.fixture
def aol_database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database: once SQLite, once PostgreSQL."""
    fixture = "aol_sqlite_url" if request.param == "sqlite" else "aol_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def aol_plugins() -> list[str] | None:
    """The distributions ``aol_harness`` loads; None: every installed one (``AOL_PLUGINS``
    and ``AOL_DISABLE_PLUGINS`` apply). Override it in a plugin's conftest.py to test that
    plugin alone: ``return ["acme-mail"]``."""
    return None


@pytest.fixture
def aol_harness(aol_database_url: str, aol_plugins: list[str] | None) -> Iterator[ActionHarness]:
    """AOL's and the plugins' tables in a fresh database, and a synchronous worker."""
    registry = None
    if aol_plugins is not None:
        registry = load_plugins(Settings(plugins=tuple(aol_plugins)))
    harness = ActionHarness(aol_database_url, registry=registry)
    yield harness
    harness.close()


@pytest.fixture
def aol_no_network() -> Iterator[NetworkGuard]:
    """Refuse every network connection during the test, and fail the test if one was tried
    (even if the code under test swallowed the error)."""
    guard = NetworkGuard()
    with guard.active():
        yield guard
    if guard.attempts:
        pytest.fail(f"the test opened network connection(s) to {', '.join(guard.attempts)}")


@pytest.fixture
def aol_clock() -> Iterator[FixedClock]:
    """``aol_core.utcnow()`` fixed at ``aol_clock.now`` (2030-01-07 09:00 UTC, a Monday)
    until the test calls ``aol_clock.set(...)`` or ``aol_clock.advance(minutes=5)``."""
    clock = FixedClock()
    with clock.installed():
        yield clock
