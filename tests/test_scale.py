"""Scale hygiene: claims, idle polls and pruning walk their indexes whatever the planner's
statistics say and however much other work waits; health stays cheap; a rescued action
waits the retry backoff."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session, sessionmaker

from aol_core import queue
from aol_core.config import Settings
from aol_core.drivers import driver_for
from aol_core.health import check_health
from aol_core.models import Action, Status
from aol_core.plugins import PluginRegistry
from aol_core.queue import NewAction, enqueue_many
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow
from helpers import fetch, pass_time

BACKLOG = 20_000


@contextmanager
def sent_sql(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) ``engine`` sends while the block runs."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plan(engine: Engine, statement: str, parameters: Any) -> str:
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


def plans_of(engine: Engine, run: Callable[[], object], table: str = "aol_actions") -> list[str]:
    """The plan of each statement ``run`` sends that reads ``table``."""
    with sent_sql(engine) as sent:
        run()
    return [plan(engine, sql, params) for sql, params in sent if table in sql]


def walks(index: str, query_plan: str) -> bool:
    """The plan reads ``index`` and never scans the whole actions table."""
    full_scans = ("Seq Scan on aol_actions", "SCAN aol_actions\n")
    return index in query_plan and not any(s in query_plan + "\n" for s in full_scans)


def backlog_of_another_type(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """Many due actions of a type the worker does not serve, added after the planner last
    looked at the table (PostgreSQL: analysed while empty), as after a bulk load."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE aol_actions")
    with sessions() as session, session.begin():
        enqueue_many(session, [NewAction("TEST_NOOP", {"n": n}) for n in range(BACKLOG)])


def test_claims_and_idle_polls_walk_the_claim_index_behind_a_backlog_of_another_type(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    backlog_of_another_type(engine, sessions)
    driver = driver_for(engine)
    for types in (["TEST_RECORD"], ["TEST_RECORD", "TEST_FAIL"]):
        claims = plans_of(engine, lambda types=types: driver.claim(
            engine, worker="w", action_types=types, limit=10, lease_seconds=30, now=utcnow()))

        def poll(types: list[str] = types) -> bool:
            with engine.connect() as conn:
                return queue.has_due(conn, types, utcnow())

        polls = plans_of(engine, poll)
        for query_plan in claims + polls:
            assert walks("ix_aol_actions_claim", query_plan), query_plan
        assert claims and polls


def test_pruning_walks_the_finished_history_index(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    backlog_of_another_type(engine, sessions)
    prunes = plans_of(engine, lambda: queue.prune(engine, utcnow()))
    deletes = [p for p in prunes if "ix_aol_actions_finished" in p]
    assert deletes and all(walks("ix_aol_actions_finished", p) for p in deletes), prunes


def test_health_counts_waiting_and_running_exactly_and_finished_history_cheaply(
    harness: ActionHarness, registry: PluginRegistry
) -> None:
    for _ in range(3):
        harness.run("TEST_NOOP", {})
    harness.enqueue("TEST_NOOP", {})
    harness.enqueue("TEST_RECORD", {})
    with harness.session() as session:
        session.execute(update(Action).where(Action.action_type == "TEST_RECORD")
                        .values(status=Status.RETRY.value))
    estimated = harness.engine.dialect.name == "postgresql"
    if estimated:  # what autovacuum keeps current
        with harness.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE aol_actions")
    report = check_health(harness.engine, registry)
    finished = {"finished": 3} if estimated else {}  # SQLite keeps no estimate
    assert report.counts == {"PENDING": 1, "RETRY": 1, "RUNNING": 0, "HELD": 0, **finished}
    assert report.estimated == (["finished"] if estimated else [])


def test_a_rescued_action_waits_the_retry_backoff(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    action_id = harness.enqueue("TEST_RECORD", {}, max_attempts=3)
    driver_for(harness.engine).claim(harness.engine, worker="crashed",
                                     action_types=["TEST_RECORD"], limit=1, lease_seconds=30,
                                     now=utcnow())
    pass_time(harness.engine, timedelta(seconds=31))
    settings = Settings(retry_base_seconds=600)
    before = utcnow()
    assert queue.rescue_expired(harness.engine, utcnow(), "w2", settings) == [
        (action_id, Status.RETRY.value)]
    # the first retry waits between half and all of the base delay
    not_before = fetch(sessions, action_id).not_before
    assert before + timedelta(seconds=299) < not_before < utcnow() + timedelta(seconds=601)
