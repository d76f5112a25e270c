"""``aol_core.run_worker``: a worker embedded in an application's own process."""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aol_core import enqueue, run_worker
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.errors import SchemaNotCurrent
from aol_core.plugins import PluginRegistry
from helpers import statuses


def test_a_burst_runs_what_is_due_and_returns_0(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry,
    settings: Settings,
) -> None:
    with sessions() as session, session.begin():
        done = enqueue(session, "TEST_NOOP", {})
    assert run_worker(engine, burst=True, registry=registry, settings=settings) == 0
    assert statuses(sessions) == {done.id: "SUCCESS"}


def test_handling_signals_puts_the_previous_handlers_back(
    engine: Engine, registry: PluginRegistry, settings: Settings,
) -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    run_worker(engine, burst=True, registry=registry, settings=settings, handle_signals=True)
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_a_database_without_the_schema_is_refused(aol_sqlite_url: str) -> None:
    engine = create_engine(aol_sqlite_url)
    with pytest.raises(SchemaNotCurrent, match="aol db upgrade"):
        run_worker(engine, burst=True)
    engine.dispose()
