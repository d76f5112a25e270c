"""What a worker claims and when it stops: only work its runners can start, a hung handler
holds nothing but its own action, a cancelled running action is noticed, and a burst worker
exits when there is nothing it may run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import aol_test_actions
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from aol_core import NewAction, enqueue_many, queue
from aol_core.config import Settings
from aol_core.control import set_flag
from aol_core.models import Action, Status
from aol_core.plugins import PluginRegistry, load_plugins
from aol_core.timeutil import utcnow
from aol_core.worker import Worker, WorkerOptions

DEADLINE = 60.0


@pytest.fixture(autouse=True)
def _blocking_handlers_reset() -> Iterator[None]:
    for flag in (aol_test_actions.BLOCKED, aol_test_actions.RELEASE,
                 aol_test_actions.SAW_CANCEL):
        flag.clear()
    yield
    aol_test_actions.RELEASE.set()  # never leave a runner thread blocked


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Running:
    """A worker on a thread of its own, stopped when the test ends."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)
        self.thread.start()
        assert worker.started.wait(DEADLINE)

    def stop(self) -> None:
        self.worker.request_stop("test over")
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive()


@pytest.fixture
def start(engine: Engine, registry: PluginRegistry,
          settings: Settings) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def start(name: str, **options: object) -> Running:
        worker = Worker(engine, registry, settings.with_overrides(poll_interval=0.05),
                        WorkerOptions(name=name, **options))  # type: ignore[arg-type]
        running.append(Running(worker))
        return running[-1]

    yield start
    aol_test_actions.RELEASE.set()
    for each in running:
        each.stop()


def _enqueue(sessions: sessionmaker[Session], *items: NewAction) -> list[int]:
    with sessions() as session, session.begin():
        return [e.id for e in enqueue_many(session, list(items))]


def _status(sessions: sessionmaker[Session], action_id: int) -> str:
    with sessions() as session:
        return str(session.scalar(select(Action.status).where(Action.id == action_id)))


def test_a_hung_handler_holds_only_its_own_action(
    sessions: sessionmaker[Session], start: Callable[..., Running],
) -> None:
    [hung] = _enqueue(sessions, NewAction("TEST_BLOCK", {}, priority=10))
    first = start("first", concurrency=1)
    assert aol_test_actions.BLOCKED.wait(DEADLINE)
    others = _enqueue(sessions, *(NewAction("TEST_RECORD", {"n": n}) for n in range(5)))
    time.sleep(0.3)  # a few poll intervals: time enough for the first worker to claim more
    start("second", concurrency=1)
    wait_for(lambda: all(_status(sessions, i) == Status.SUCCESS for i in others),
             "the second worker to run the five others")
    with sessions() as session:
        workers = set(session.scalars(text(
            "SELECT worker FROM test_actions_runs WHERE tag IS NULL")))
    assert workers == {"second"}
    assert _status(sessions, hung) == Status.RUNNING
    assert set(first.worker.held) == {(hung, 1)}


def test_a_cancelled_running_action_is_told_and_its_writes_roll_back(
    sessions: sessionmaker[Session], start: Callable[..., Running],
) -> None:
    [action_id] = _enqueue(sessions, NewAction("TEST_BLOCK", {}))
    worker = start("w", concurrency=1).worker
    assert aol_test_actions.BLOCKED.wait(DEADLINE)
    with sessions() as session, session.begin():
        assert queue.cancel_action(session, action_id).status == Status.CANCELLED
    assert aol_test_actions.SAW_CANCEL.wait(DEADLINE)
    wait_for(lambda: not worker.held, "the worker to finish the cancelled attempt")
    assert _status(sessions, action_id) == Status.CANCELLED
    with sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM test_actions_runs")) == 0


def test_a_burst_worker_exits_when_the_queue_is_paused(
    engine: Engine, registry: PluginRegistry, settings: Settings,
    sessions: sessionmaker[Session],
) -> None:
    [action_id] = _enqueue(sessions, NewAction("TEST_NOOP", {}))
    with engine.begin() as conn:
        set_flag(conn, "paused", True)
    worker = Worker(engine, registry, settings, WorkerOptions(burst=True))
    assert worker.run() == 0
    assert "paused" in worker.stop_reason
    assert _status(sessions, action_id) == Status.PENDING


def test_a_burst_worker_without_action_types_exits(engine: Engine, settings: Settings) -> None:
    nothing = load_plugins(Settings(plugins=()))
    worker = Worker(engine, nothing, settings, WorkerOptions(burst=True))
    assert worker.run() == 0
    assert "no action types" in worker.stop_reason


def test_a_burst_worker_says_what_waits_and_when_it_is_due(
    engine: Engine, registry: PluginRegistry, settings: Settings,
    sessions: sessionmaker[Session],
) -> None:
    later = utcnow() + timedelta(hours=1)
    _enqueue(sessions, NewAction("TEST_NOOP", {}, not_before=later),
             NewAction("TEST_NOOP", {}, not_before=later + timedelta(hours=1)))
    worker = Worker(engine, registry, settings, WorkerOptions(burst=True))
    assert worker.run() == 0
    assert "2 action(s) wait" in worker.stop_reason
    assert f"{later:%Y-%m-%d %H:%M:%S} UTC" in worker.stop_reason


def test_claims_that_cannot_start_are_handed_back_for_another_worker(
    engine: Engine, registry: PluginRegistry, settings: Settings,
    sessions: sessionmaker[Session], start: Callable[..., Running],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aol.worker")
    [hung] = _enqueue(sessions, NewAction("TEST_BLOCK", {}, priority=10))
    others = _enqueue(sessions, *(NewAction("TEST_NOOP", {"n": n}) for n in range(5)))
    first = Worker(engine, registry, settings.with_overrides(poll_interval=0.05, lease_seconds=3),
                   WorkerOptions(name="first", concurrency=1))
    first.handler_seconds["TEST_NOOP"] = 0.001  # known fast: it claims a batch ahead
    running = Running(first)
    try:
        assert aol_test_actions.BLOCKED.wait(DEADLINE)
        wait_for(lambda: all(_status(sessions, i) == Status.PENDING for i in others),
                 "the first worker to hand back the claims it could not start")
        start("second", concurrency=1)
        wait_for(lambda: all(_status(sessions, i) == Status.SUCCESS for i in others),
                 "the second worker to run them")
        assert _status(sessions, hung) == Status.RUNNING
        assert "handed back 5 claimed action(s) that could not start in time" in caplog.text
    finally:
        aol_test_actions.RELEASE.set()
        running.stop()
