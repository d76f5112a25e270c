"""Pruning: finished history goes after the retention period, with its logs and artifacts;
failures stay for operators unless asked; pruned actions' keys stay for the key retention;
one worker prunes per period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from aol_core import pruning, queue, worker_registry
from aol_core.cli import main
from aol_core.config import Settings
from aol_core.errors import ConfigError, IdempotencyConflict
from aol_core.models import (
    Action,
    Artifact,
    ExecutionLog,
    PrunedKey,
    Status,
    Worker,
    control_table,
    pruned_keys_table,
)
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


# --- idempotency outlives pruning ------------------------------------------------------------


def test_enqueuing_the_key_of_a_pruned_action_returns_it_instead_of_running_it_again(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    old = harness.run("TEST_NOOP", {"n": 1}, idempotency_key="once").id
    finished_days_ago(harness, old, 10)
    assert queue.prune(harness.engine, utcnow() - timedelta(days=7)) == 1
    with harness.session() as session:
        again = queue.enqueue(session, "TEST_NOOP", {"n": 1}, idempotency_key="once")
    assert again == queue.Enqueued(old, "once", Status.SUCCESS.value, False)
    assert remaining(sessions, Action) == 0


def test_the_key_of_a_pruned_action_with_another_type_is_a_conflict(
    harness: ActionHarness,
) -> None:
    finished_days_ago(harness, harness.run("TEST_NOOP", {}, idempotency_key="k").id, 10)
    queue.prune(harness.engine, utcnow() - timedelta(days=7))
    with pytest.raises(IdempotencyConflict, match="already names a TEST_NOOP action"), \
            harness.session() as session:
        queue.enqueue(session, "TEST_RECORD", {}, idempotency_key="k")


def test_pruned_keys_are_forgotten_after_the_key_retention(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    for key, days in (("old", 40), ("recent", 10)):
        finished_days_ago(harness, harness.run("TEST_NOOP", {}, idempotency_key=key).id, days)
    queue.prune(harness.engine, utcnow() - timedelta(days=7))
    assert queue.prune_keys(harness.engine, utcnow() - timedelta(days=30)) == 1
    with sessions() as session:
        assert session.scalars(select(PrunedKey.idempotency_key)).all() == ["recent"]
    with harness.session() as session:
        assert queue.enqueue(session, "TEST_NOOP", {}, idempotency_key="old").created


def test_the_key_retention_defaults_to_thirty_days_or_the_retention_if_longer() -> None:
    assert Settings().keys_kept_for == timedelta(days=30)
    assert Settings(retention=timedelta(days=60)).keys_kept_for == timedelta(days=60)
    assert Settings(key_retention=timedelta(days=9)).keys_kept_for == timedelta(days=9)


def test_a_key_retention_shorter_than_the_retention_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"AOL_KEY_RETENTION .* must be at least AOL_RETENTION"):
        Settings.from_env({"AOL_RETENTION": "7d", "AOL_KEY_RETENTION": "1d"})


# --- one worker prunes per period ------------------------------------------------------------


def test_one_worker_takes_each_pruning_turn(harness: ActionHarness) -> None:
    now = utcnow()
    assert queue.take_pruning_turn(harness.engine, pruning.PERIOD, now)
    assert not queue.take_pruning_turn(harness.engine, pruning.PERIOD, now)
    with harness.engine.begin() as conn:  # a period later
        conn.execute(update(control_table).values(
            last_pruned_at=now - pruning.PERIOD - timedelta(seconds=1)))
    assert queue.take_pruning_turn(harness.engine, pruning.PERIOD, now)


def test_a_worker_whose_turn_it_is_not_prunes_nothing(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    finished_days_ago(harness, harness.run("TEST_NOOP", {}).id, 10)
    assert queue.take_pruning_turn(harness.engine, pruning.PERIOD, utcnow())
    assert pruning.prune_if_my_turn(harness.engine, Settings(), utcnow(),
                                    keep_going=lambda: True) is None
    assert remaining(sessions, Action) == 1


def test_the_pruning_pass_deletes_old_actions_keys_and_long_gone_workers(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    finished_days_ago(harness, harness.run("TEST_NOOP", {}).id, 10)
    now = utcnow()
    with harness.engine.begin() as conn:
        for name, gone_for in (("stopped-long-ago", timedelta(days=2)),
                               ("stopped-just-now", timedelta(minutes=1)),
                               ("alive", -timedelta(minutes=1))):
            worker_registry.register(
                conn, worker_registry.WorkerIdentity(name, "host", 1), versions={},
                action_types=[], degraded=False, now=now - gone_for, alive_for=timedelta(0))
        conn.execute(insert(pruned_keys_table).values(
            idempotency_key="ancient", action_id=1, action_type="TEST_NOOP",
            status=Status.SUCCESS.value, finished_at=now - timedelta(days=90)))
    pruned = pruning.prune_if_my_turn(harness.engine, Settings(), now, keep_going=lambda: True)
    assert pruned == pruning.Pruned(actions=1, keys=1, workers=1)
    with sessions() as session:
        assert set(session.scalars(select(Worker.name))) == {"stopped-just-now", "alive"}
        assert "ancient" not in set(session.scalars(select(PrunedKey.idempotency_key)))
