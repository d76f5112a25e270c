"""Transactions under concurrency: a handler's writes are atomic with its outcome, and on
SQLite concurrent workers queue for the write lock instead of failing."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from aol_core import NewAction, enqueue_many
from aol_core.config import Settings
from aol_core.models import Action, Status
from aol_core.plugins import PluginRegistry
from aol_core.worker import Worker, WorkerOptions


def test_handlers_that_read_then_write_succeed_beside_concurrent_commits(
    engine: Engine, registry: PluginRegistry, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session, session.begin():
        enqueue_many(session, [NewAction("TEST_RECORD", {"read_first": True, "think": 0.002,
                                                         "n": n}) for n in range(200)])
    workers = [
        Worker(engine, registry, settings.with_overrides(poll_interval=0.05, batch_size=5),
               WorkerOptions(name=f"w{i}", concurrency=3, burst=True))
        for i in range(2)
    ]
    threads = [threading.Thread(target=w.run) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with sessions() as session:
        attempts = session.execute(select(Action.status, func.max(Action.attempts))
                                   .group_by(Action.status)).all()
        runs = session.scalar(text("SELECT count(*) FROM test_actions_runs"))
    assert attempts == [(Status.SUCCESS, 1)]
    assert runs == 200


def test_a_read_only_session_takes_no_write_lock(engine: Engine,
                                                 sessions: sessionmaker[Session]) -> None:
    with sessions() as reader, reader.begin():
        reader.scalar(select(func.count()).select_from(Action))
        # a second writer is not blocked by the open reading transaction
        with sessions() as writer, writer.begin():
            writer.execute(text("INSERT INTO test_actions_runs (action_id, attempt) VALUES (1, 1)"))
    with sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM test_actions_runs")) == 1


def test_a_worker_shares_commits_among_fast_actions(
    engine: Engine, registry: PluginRegistry, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    from sqlalchemy import event

    with sessions() as session, session.begin():
        enqueue_many(session, [NewAction("TEST_NOOP", {"n": n}) for n in range(200)])
    commits: list[None] = []
    event.listen(engine, "commit", lambda _conn: commits.append(None))
    worker = Worker(engine, registry, settings.with_overrides(batch_size=10),
                    WorkerOptions(burst=True))
    assert worker.run() == 0
    with sessions() as session:
        assert session.scalar(select(func.count()).where(Action.status == Status.SUCCESS)) == 200
    # one commit per action would be 200 completions plus 20 claims
    assert len(commits) < 80, len(commits)
