"""An enqueue that races the prune of the finished action with the same idempotency key never
runs that action again: each interleaving of the two transactions is forced step by step
(threads stopped at chosen statements), not left to timing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text, update
from sqlalchemy.engine import Connection

from aol_core import queue
from aol_core.db import create_engine
from aol_core.drivers import driver_for
from aol_core.models import Action, Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow

#: the longest any step may take on a busy machine; no step is expected to take long
DEADLINE = 60.0
KEY = "once"


class Gate:
    """A point where a thread stops, tells the test so, and waits to be let through."""

    def __init__(self, *, open_: bool = False) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()
        if open_:
            self.go.set()

    def stop_here(self) -> None:
        self.reached.set()
        if not self.go.wait(DEADLINE):
            raise TimeoutError("the test never let this thread go on")


class Running:
    """A function run on its own thread, its result or exception kept for the test."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self.thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self.value = work()
        except BaseException as exc:
            self.error = exc

    def finished(self) -> bool:
        return not self.thread.is_alive()

    def result(self) -> Any:
        self.thread.join(DEADLINE)
        assert self.finished(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.value


@pytest.fixture
def pruner(db_url: str) -> Iterator[Engine]:
    """The prune's own engine: its connections are not the enqueue's."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def finished_long_ago(harness: ActionHarness) -> int:
    """An action with :data:`KEY` that ran and finished beyond the retention."""
    action_id = harness.run("TEST_NOOP", {}, idempotency_key=KEY).id
    with harness.session() as session:
        session.execute(update(Action).where(Action.id == action_id).values(
            finished_at=utcnow() - timedelta(days=10)))
    return action_id


def prune(engine: Engine) -> int:
    return queue.prune(engine, utcnow() - timedelta(days=7))


def enqueue_again(harness: ActionHarness) -> queue.Enqueued:
    with harness.session() as session:
        return queue.enqueue(session, "TEST_NOOP", {}, idempotency_key=KEY)


def actions_left(harness: ActionHarness) -> int:
    with harness.session() as session:
        return session.scalar(select(func.count()).select_from(Action)) or 0


def gate_insert(monkeypatch: pytest.MonkeyPatch, engine: Engine, *,
                before: Gate | None = None, after: Gate | None = None) -> None:
    """Stop the enqueue just before and/or just after it inserts actions (the driver's
    insert runs unchanged in between)."""
    driver_class = type(driver_for(engine))
    insert_actions = driver_class.insert_actions

    def gated(self: Any, conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        if before is not None:
            before.stop_here()
        inserted = insert_actions(self, conn, rows)
        if after is not None:
            after.stop_here()
        return inserted

    monkeypatch.setattr(driver_class, "insert_actions", gated)


@contextmanager
def gate_after_deleting(engine: Engine, gate: Gate) -> Iterator[None]:
    """Stop the prune after it deleted actions, before its transaction commits."""
    def stop(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM AOL_ACTIONS"):
            gate.stop_here()

    event.listen(engine, "after_cursor_execute", stop)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", stop)


def wait_until_blocked_on_a_lock(engine: Engine) -> None:
    """On PostgreSQL, until a session waits on a lock (the enqueue on the prune's delete).
    On SQLite the enqueue waits for the write lock, which nothing shows: it has reached its
    insert, which cannot run while the prune's transaction holds the lock."""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + DEADLINE
    with engine.connect() as conn:
        while not conn.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")):
            assert time.monotonic() < deadline, "the enqueue never waited for the prune"
            time.sleep(0.05)
            conn.rollback()  # a fresh snapshot of the statistics


def test_a_prune_between_the_enqueues_start_and_its_insert_does_not_run_the_action_again(
    harness: ActionHarness, pruner: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = finished_long_ago(harness)
    about_to_insert = Gate()
    gate_insert(monkeypatch, harness.engine, before=about_to_insert)
    enqueuing = Running(lambda: enqueue_again(harness))
    assert about_to_insert.reached.wait(DEADLINE)
    assert prune(pruner) == 1
    about_to_insert.go.set()
    assert enqueuing.result() == queue.Enqueued(old, KEY, Status.SUCCESS.value, False)
    assert actions_left(harness) == 0


def test_an_enqueue_while_the_prune_deleted_but_has_not_committed_does_not_run_it_again(
    harness: ActionHarness, pruner: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = finished_long_ago(harness)
    deleted = Gate()
    inserting = Gate(open_=True)
    gate_insert(monkeypatch, harness.engine, before=inserting)
    with gate_after_deleting(pruner, deleted):
        pruning = Running(lambda: prune(pruner))
        assert deleted.reached.wait(DEADLINE)
        enqueuing = Running(lambda: enqueue_again(harness))
        assert inserting.reached.wait(DEADLINE)
        wait_until_blocked_on_a_lock(pruner)
        deleted.go.set()
        assert pruning.result() == 1
    assert enqueuing.result() == queue.Enqueued(old, KEY, Status.SUCCESS.value, False)
    assert actions_left(harness) == 0


def test_a_prune_between_the_enqueues_insert_and_its_reads_returns_the_pruned_action(
    harness: ActionHarness, pruner: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insert found the action still there, and the prune deleted it before the enqueue
    read it back. (On SQLite the enqueue holds the write lock from its insert on: the prune
    waits for it, and prunes the action after.)"""
    old = finished_long_ago(harness)
    inserted = Gate()
    gate_insert(monkeypatch, harness.engine, after=inserted)
    enqueuing = Running(lambda: enqueue_again(harness))
    assert inserted.reached.wait(DEADLINE)
    pruning = Running(lambda: prune(pruner))
    if harness.engine.dialect.name == "postgresql":
        assert pruning.result() == 1
    inserted.go.set()
    assert enqueuing.result() == queue.Enqueued(old, KEY, Status.SUCCESS.value, False)
    assert pruning.result() == 1
    assert actions_left(harness) == 0
