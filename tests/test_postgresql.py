"""PostgreSQL only: concurrent bulk enqueues, the LISTEN connection's recovery, and workers
whose clocks disagree with the database's (SQLite is one machine with one clock)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from aol_core import queue, schema, timeutil
from aol_core.config import Settings
from aol_core.db import create_engine, session_factory
from aol_core.drivers import driver_for
from aol_core.drivers.postgresql import PgListener
from aol_core.models import Status
from aol_core.plugins import PluginRegistry
from aol_core.queue import NewAction, enqueue_many
from aol_core.testing import ActionHarness
from helpers import fetch, pass_time

DEADLINE = 120.0


@pytest.fixture
def pg_engine(aol_postgres_url: str, registry: PluginRegistry) -> Iterator[Engine]:
    engine = create_engine(aol_postgres_url)
    schema.upgrade(engine, registry)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_harness(pg_engine: Engine, aol_postgres_url: str,
               registry: PluginRegistry) -> Iterator[ActionHarness]:
    settings = Settings(database_url=aol_postgres_url, retry_base_seconds=0)
    harness = ActionHarness(aol_postgres_url, registry=registry, settings=settings)
    yield harness
    harness.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# --- bulk enqueues never wait for each other -------------------------------------------------


def test_two_bulk_enqueues_in_open_transactions_both_finish_before_either_commits(
    pg_engine: Engine,
) -> None:
    sessions = session_factory(pg_engine)
    enqueued = [threading.Event(), threading.Event()]
    commit = threading.Event()
    errors: list[BaseException] = []

    def bulk(n: int) -> None:
        try:
            items = [NewAction("TEST_NOOP", {"i": i}, idempotency_key=f"bulk-{n}-{i}")
                     for i in range(10_000)]
            with sessions() as session, session.begin():
                enqueue_many(session, items)
                enqueued[n].set()
                commit.wait(DEADLINE)
        except BaseException as exc:
            errors.append(exc)
            enqueued[n].set()

    threads = [threading.Thread(target=bulk, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: all(e.is_set() for e in enqueued), "both bulk enqueues")
        assert not errors
    finally:
        commit.set()
        for thread in threads:
            thread.join(DEADLINE)
    with pg_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM aol_actions")) == 20_000


# --- LISTEN survives its connection ----------------------------------------------------------


def test_the_listener_reconnects_after_its_backend_is_terminated_and_wakes_the_worker(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    wake = threading.Event()
    caplog.set_level(logging.INFO, logger="aol.worker")
    listener = PgListener(pg_engine, wake)
    try:
        pid = listener.backend_pid
        assert pid is not None
        wake.clear()
        with pg_engine.connect() as conn:  # this test's own listener, no other backend
            assert conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        wait_for(lambda: listener.backend_pid not in (None, pid), "the listener to reconnect")
        assert wake.wait(DEADLINE), "reconnecting must wake the worker: work may have arrived"

        wake.clear()
        with pg_engine.begin() as conn:
            driver_for(conn).notify(conn)
        assert wake.wait(DEADLINE), "the new connection must LISTEN again"
    finally:
        listener.stop()
    lost = [r for r in caplog.records if r.getMessage().startswith("LISTEN connection lost")]
    assert len(lost) == 1


# --- the database's clock, not the worker's -------------------------------------------------


@pytest.fixture(params=[timedelta(hours=1), timedelta(hours=-1)], ids=["ahead", "behind"])
def skew(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> timedelta:
    """Every AOL module's clock off by an hour, as on a worker machine with a bad clock."""
    offset: timedelta = request.param
    real = timeutil.utcnow

    def skewed() -> datetime:
        return real() + offset

    for name, module in list(sys.modules.items()):
        if name.startswith("aol_core") and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", skewed)
    return offset


def test_a_skewed_worker_claims_what_is_due_by_the_database_clock(
    pg_harness: ActionHarness, skew: timedelta
) -> None:
    due = pg_harness.enqueue("TEST_RECORD", {})
    future = pg_harness.enqueue("TEST_RECORD", {},
                                not_before=timeutil.utcnow() - skew + timedelta(minutes=30))
    with pg_harness.engine.connect() as conn:
        assert queue.has_due(conn, ["TEST_RECORD"], timeutil.utcnow())
    assert [o.claim.id for o in pg_harness.run_due()] == [due]
    assert pg_harness.action(due).status == Status.SUCCESS
    assert pg_harness.action(future).status == Status.PENDING


def test_a_skewed_worker_leases_do_not_expire_early_or_late(
    pg_harness: ActionHarness, skew: timedelta
) -> None:
    action_id = pg_harness.enqueue("TEST_RECORD", {})
    claims = driver_for(pg_harness.engine).claim(
        pg_harness.engine, worker="skewed", action_types=["TEST_RECORD"], limit=1,
        lease_seconds=60, now=timeutil.utcnow())
    real_now = timeutil.utcnow() - skew
    # another worker, whose clock is right
    assert queue.rescue_expired(pg_harness.engine, real_now, "other", pg_harness.settings) == []
    with pg_harness.engine.begin() as conn:
        queue.extend_leases(conn, "skewed", claims, timeutil.utcnow() + timedelta(minutes=10))
    expires = fetch(pg_harness.sessions, action_id).lease_expires_at
    assert expires is not None
    assert real_now + timedelta(minutes=9) < expires < real_now + timedelta(minutes=11)
    pass_time(pg_harness.engine, timedelta(minutes=11))
    rescued = queue.rescue_expired(pg_harness.engine, real_now, "other", pg_harness.settings)
    assert rescued == [(action_id, Status.RETRY.value)]


def test_a_skewed_worker_schedules_retries_from_the_database_clock(
    pg_harness: ActionHarness, skew: timedelta
) -> None:
    action_id = pg_harness.enqueue("TEST_RECORD", {})
    (claim,) = driver_for(pg_harness.engine).claim(
        pg_harness.engine, worker="skewed", action_types=["TEST_RECORD"], limit=1,
        lease_seconds=60, now=timeutil.utcnow())
    now = timeutil.utcnow()
    with pg_harness.engine.begin() as conn:
        assert queue.settle(conn, claim, Status.RETRY, now=now, error="try later",
                            retry_at=now + timedelta(minutes=10))
    real_now = now - skew
    not_before = fetch(pg_harness.sessions, action_id).not_before
    assert real_now + timedelta(minutes=9) < not_before < real_now + timedelta(minutes=11)
