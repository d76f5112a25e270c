"""The driver contract, run against every database driver (River-style conformance suite)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from aol_core import NewAction, enqueue_many
from aol_core.drivers import Claim, driver_for
from aol_core.models import Status
from aol_core.models import actions_table as actions
from aol_core.timeutil import utcnow
from helpers import fetch

TYPES = ["TEST_NOOP", "TEST_RECORD"]


def add(sessions: sessionmaker[Session], *items: NewAction) -> list[int]:
    with sessions() as session, session.begin():
        return [done.id for done in enqueue_many(session, items)]


def claim(engine: Engine, limit: int = 10, types: list[str] = TYPES, worker: str = "w1",
          now: datetime | None = None) -> list[Claim]:
    return driver_for(engine).claim(engine, worker=worker, action_types=types, limit=limit,
                                    lease_seconds=30, now=now or utcnow())


def test_claim_orders_by_priority_then_not_before_then_id(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    past = utcnow() - timedelta(minutes=5)
    ids = add(
        sessions,
        NewAction("TEST_NOOP", {"n": 0}),
        NewAction("TEST_NOOP", {"n": 1}, priority=5),
        NewAction("TEST_NOOP", {"n": 2}, not_before=past),
        NewAction("TEST_NOOP", {"n": 3}, priority=5, not_before=past),
        NewAction("TEST_NOOP", {"n": 4}),
    )
    assert [c.id for c in claim(engine)] == [ids[3], ids[1], ids[2], ids[0], ids[4]]


def test_claim_takes_no_more_than_its_limit(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    add(sessions, *(NewAction("TEST_NOOP", {"n": n}) for n in range(7)))
    assert len(claim(engine, limit=3)) == 3
    assert len(claim(engine, limit=10)) == 4


def test_claim_skips_actions_not_yet_due(engine: Engine, sessions: sessionmaker[Session]) -> None:
    add(sessions, NewAction("TEST_NOOP", {}, not_before=utcnow() + timedelta(minutes=1)))
    assert claim(engine) == []


def test_claim_takes_only_the_types_asked_for(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _, record = add(sessions, NewAction("TEST_NOOP", {}), NewAction("TEST_RECORD", {}))
    assert [c.id for c in claim(engine, types=["TEST_RECORD"])] == [record]


def test_claim_leases_the_row_and_counts_an_attempt(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    (action_id,) = add(sessions, NewAction("TEST_NOOP", {"x": 1}, idempotency_key="k"))
    (taken,) = claim(engine, worker="w-lease")
    row = fetch(sessions, action_id)
    assert (row.status, row.attempts, row.lease_owner) == (Status.RUNNING, 1, "w-lease")
    assert row.started_at is not None
    assert row.lease_expires_at == row.started_at + timedelta(seconds=30)
    assert (taken.attempt, taken.fencing_token, taken.payload, taken.idempotency_key) == (
        1, row.fencing_token, {"x": 1}, "k")


def test_a_claimed_action_is_not_claimed_again(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    add(sessions, NewAction("TEST_NOOP", {}))
    assert len(claim(engine, worker="a")) == 1
    assert claim(engine, worker="b") == []


def test_each_claim_issues_a_new_fencing_token(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    (action_id,) = add(sessions, NewAction("TEST_NOOP", {}))
    first = claim(engine)[0]
    with sessions() as session, session.begin():
        from aol_core.models import Action
        row = session.get(Action, action_id)
        assert row is not None
        row.status = Status.RETRY.value
    second = claim(engine)[0]
    assert second.fencing_token > first.fencing_token
    assert second.attempt == 2


def test_concurrent_claims_never_share_an_action(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    add(sessions, *(NewAction("TEST_NOOP", {"n": n}) for n in range(400)))
    taken: list[list[int]] = [[] for _ in range(4)]

    def drain(slot: int) -> None:
        while batch := claim(engine, limit=7, worker=f"w{slot}"):
            taken[slot].extend(c.id for c in batch)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    everything = [i for ids in taken for i in ids]
    assert len(everything) == len(set(everything)) == 400


def test_insert_actions_reports_only_new_keys(engine: Engine) -> None:
    now = utcnow()
    row = {"action_type": "TEST_NOOP", "payload": "{}", "status": "PENDING", "priority": 0,
           "attempts": 0, "max_attempts": 1, "not_before": now, "fencing_token": 0,
           "proof_mode": False, "flow_key": None, "schedule_slot": None, "created_at": now,
           "updated_at": now}
    driver = driver_for(engine)
    with engine.begin() as conn:
        first = driver.insert_actions(conn, [{**row, "idempotency_key": "a"}])
        second = driver.insert_actions(
            conn, [{**row, "idempotency_key": "a"}, {**row, "idempotency_key": "b"}])
    assert list(first) == ["a"]
    assert list(second) == ["b"]


def test_succeed_many_settles_only_claims_that_hold_their_lease(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    add(sessions, *(NewAction("TEST_NOOP", {"n": n}) for n in range(3)))
    first, second, third = claim(engine)
    stale = Claim(**{**second.__dict__, "fencing_token": second.fencing_token - 1})
    with engine.begin() as conn:
        settled = driver_for(engine).succeed_many(
            conn, [(first, {"r": 1}), (stale, None), (third, [1, 2])], utcnow())
    assert settled == 2
    assert (fetch(sessions, first.id).status, fetch(sessions, first.id).result) == (
        Status.SUCCESS, {"r": 1})
    assert fetch(sessions, second.id).status == Status.RUNNING
    assert fetch(sessions, third.id).result == [1, 2]


def test_insert_logs_keeps_every_field(engine: Engine, sessions: sessionmaker[Session]) -> None:
    from aol_core.models import ExecutionLog

    (action_id,) = add(sessions, NewAction("TEST_NOOP", {}))
    now = utcnow()
    row = {"action_id": action_id, "attempt": 1, "ts": now, "level": "INFO", "message": "m",
           "worker": "w", "artifact_ref": "aol://artifacts/1/x", "artifact_sha256": "ab"}
    with engine.begin() as conn:
        driver_for(engine).insert_logs(conn, [row, {**row, "artifact_ref": None,
                                                    "artifact_sha256": None}])
    with sessions() as session:
        stored = session.query(ExecutionLog).order_by(ExecutionLog.id).all()
    assert [(e.ts, e.artifact_ref) for e in stored] == [(now, "aol://artifacts/1/x"), (now, None)]


def test_lock_claims_returns_only_claims_that_still_hold_their_lease(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    add(sessions, *(NewAction("TEST_NOOP", {"n": n}) for n in range(3)))
    held, taken_over, cancelled = claim(engine)
    with engine.begin() as conn:
        conn.execute(update(actions).where(actions.c.id == taken_over.id)
                     .values(fencing_token=actions.c.fencing_token + 1))
        conn.execute(update(actions).where(actions.c.id == cancelled.id)
                     .values(status=Status.CANCELLED.value))
    with engine.begin() as conn:
        locked = driver_for(engine).lock_claims(conn, [held, taken_over, cancelled])
    assert locked == {(held.id, held.fencing_token)}


def test_locked_claims_cannot_change_until_the_transaction_ends(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    add(sessions, NewAction("TEST_NOOP", {}))
    [held] = claim(engine)
    with engine.connect() as conn, conn.begin():
        driver_for(engine).lock_claims(conn, [held])
        with engine.connect() as other, pytest.raises(OperationalError):
            if engine.dialect.name == "sqlite":
                other.exec_driver_sql("PRAGMA busy_timeout=0")
            else:
                other.exec_driver_sql("SET lock_timeout = '10ms'")
            other.execute(update(actions).where(actions.c.id == held.id)
                          .values(status=Status.CANCELLED.value))
