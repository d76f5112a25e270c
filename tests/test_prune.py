"""Pruning: finished history goes after the retention period, with its logs and artifacts;
failures stay for operators unless asked."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from aol_core import queue
from aol_core.cli import main
from aol_core.models import Action, Artifact, ExecutionLog, Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow


def finished_days_ago(harness: ActionHarness, action_id: int, days: int) -> None:
    with harness.session() as session:
        session.execute(update(Action).where(Action.id == action_id).values(
            finished_at=utcnow() - timedelta(days=days)))


def remaining(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_old_successes_go_with_their_logs_and_artifacts(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    old = harness.run("TEST_ARTIFACT", {}).id
    finished_days_ago(harness, old, 10)
    recent = harness.run("TEST_ARTIFACT", {}).id
    assert queue.prune(harness.engine, utcnow() - timedelta(days=7)) == 1
    with sessions() as session:
        assert session.scalars(select(Action.id)).all() == [recent]
        assert set(session.scalars(select(ExecutionLog.action_id))) == {recent}
        assert set(session.scalars(select(Artifact.action_id))) == {recent}


def test_failures_are_kept_unless_asked(harness: ActionHarness,
                                        sessions: sessionmaker[Session]) -> None:
    failed = harness.run("TEST_FAIL", {"mode": "permanent"}).id
    dead = harness.run("TEST_FAIL", {}, max_attempts=1).id
    for action_id in (failed, dead):
        finished_days_ago(harness, action_id, 30)
    assert queue.prune(harness.engine, utcnow()) == 0
    assert queue.prune(harness.engine, utcnow(), include_failed=True) == 2
    assert remaining(sessions, Action) == 0


def test_unfinished_actions_are_never_pruned(harness: ActionHarness,
                                             sessions: sessionmaker[Session]) -> None:
    assert harness.run("TEST_FAIL", {}).status == Status.RETRY
    harness.enqueue("TEST_NOOP", {})
    assert queue.prune(harness.engine, utcnow() + timedelta(days=1), include_failed=True) == 0
    assert remaining(sessions, Action) == 2


def test_pruning_works_through_many_chunks(harness: ActionHarness,
                                           sessions: sessionmaker[Session]) -> None:
    from aol_core import NewAction, enqueue_many

    with harness.session() as session:
        enqueue_many(session, [NewAction("TEST_NOOP", {"n": n})
                               for n in range(queue.PRUNE_CHUNK + 10)])
        session.execute(update(Action).values(status=Status.SUCCESS.value,
                                              finished_at=utcnow() - timedelta(days=9)))
    assert queue.prune(harness.engine, utcnow()) == queue.PRUNE_CHUNK + 10


def test_aol_prune_reports_what_it_deleted(harness: ActionHarness, db_url: str,
                                           capsys: object) -> None:
    finished_days_ago(harness, harness.run("TEST_NOOP", {}).id, 8)
    harness.run("TEST_NOOP", {})
    assert main(["--db", db_url, "prune", "--older-than", "7d"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert out.strip() == "pruned 1 finished action(s) older than 7 days, 0:00:00"
