"""Leases: expiry hands an action to another worker; heartbeats and hand-backs keep it fair."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aol_core import queue
from aol_core.drivers import Claim, driver_for
from aol_core.models import Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow
from helpers import fetch, pass_time


def claim_all(engine: Engine, worker: str = "w1", lease: float = 30,
              now: datetime | None = None) -> list[Claim]:
    return driver_for(engine).claim(engine, worker=worker, action_types=["TEST_RECORD"],
                                    limit=10, lease_seconds=lease, now=now or utcnow())


def test_an_expired_lease_returns_the_action_to_retry(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    action_id = harness.enqueue("TEST_RECORD", {}, max_attempts=3)
    claim_all(harness.engine, worker="crashed")
    pass_time(harness.engine, timedelta(seconds=31))
    rescued = queue.rescue_expired(harness.engine, utcnow(), "w2", harness.settings)
    assert rescued == [(action_id, Status.RETRY.value)]
    action = fetch(sessions, action_id)
    assert (action.status, action.attempts, action.lease_owner) == (Status.RETRY, 1, None)
    assert action.last_error == ("lease expired: worker crashed stopped renewing it during "
                                 "attempt 1")
    (entry,) = harness.logs(action_id)
    assert (entry.level, entry.worker) == ("WARNING", "w2")


def test_an_expired_lease_with_no_attempts_left_goes_to_dlq(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    action_id = harness.enqueue("TEST_RECORD", {}, max_attempts=1)
    claim_all(harness.engine, worker="crashed")
    pass_time(harness.engine, timedelta(seconds=31))
    queue.rescue_expired(harness.engine, utcnow(), "w2", harness.settings)
    action = fetch(sessions, action_id)
    assert (action.status, action.finished_at is not None) == (Status.DLQ, True)
    (entry,) = harness.logs(action_id)
    assert entry.level == "ERROR" and "moved to DLQ" in entry.message


def test_a_live_lease_is_not_rescued(harness: ActionHarness) -> None:
    harness.enqueue("TEST_RECORD", {})
    claim_all(harness.engine)
    assert queue.rescue_expired(harness.engine, utcnow(), "w2", harness.settings) == []


def test_the_worker_that_took_over_completes_and_the_stale_one_cannot(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    action_id = harness.enqueue("TEST_RECORD", {"tag": "x"})
    (stale,) = claim_all(harness.engine, worker="slow", lease=1)
    pass_time(harness.engine, timedelta(seconds=2))
    queue.rescue_expired(harness.engine, utcnow(), "fast", harness.settings)
    (fresh,) = claim_all(harness.engine, worker="fast")
    assert harness.dispatcher.run(fresh, proof_mode=False).status == Status.SUCCESS
    assert harness.dispatcher.run(stale, proof_mode=False).status is None
    action = fetch(sessions, action_id)
    assert (action.status, action.result["attempt"]) == (Status.SUCCESS, 2)


def test_extending_leases_pushes_expiry_for_the_owner_only(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    action_id = harness.enqueue("TEST_RECORD", {})
    claims = claim_all(harness.engine, worker="owner", lease=5)
    before = utcnow()
    with harness.engine.begin() as conn:
        queue.extend_leases(conn, "someone-else", claims, utcnow() + timedelta(hours=2))
        queue.extend_leases(conn, "owner", claims, utcnow() + timedelta(minutes=10))
    expires = fetch(sessions, action_id).lease_expires_at
    assert expires is not None
    assert before + timedelta(minutes=9) < expires < utcnow() + timedelta(minutes=11)


def test_handing_back_an_unstarted_claim_does_not_count_the_attempt(
    harness: ActionHarness, sessions: sessionmaker[Session]
) -> None:
    action_id = harness.enqueue("TEST_RECORD", {})
    claims = claim_all(harness.engine)
    assert queue.release(harness.engine, claims, utcnow()) == 1
    action = fetch(sessions, action_id)
    assert (action.status, action.attempts, action.lease_owner) == (Status.PENDING, 0, None)
