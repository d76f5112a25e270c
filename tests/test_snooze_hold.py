"""A handler's Snooze (wait, attempt given back) and Hold (HELD for a person), and the
operator's release and resolve, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aol_test_actions import runs  # type: ignore[import-untyped]
from sqlalchemy import func, select

from aol_core import queue
from aol_core.errors import InvalidTransition
from aol_core.health import check_health
from aol_core.models import ExecutionLog, Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow
from helpers import aol, fetch


def log_messages(harness: ActionHarness, action_id: int) -> list[str]:
    with harness.sessions() as session:
        return list(session.scalars(select(ExecutionLog.message).where(
            ExecutionLog.action_id == action_id).order_by(ExecutionLog.id)))


def committed_runs(harness: ActionHarness) -> int:
    with harness.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(runs)).scalar_one())


def test_a_snoozed_action_waits_until_the_time_with_its_attempt_given_back(
    harness: ActionHarness,
) -> None:
    action_id = harness.enqueue("TEST_SNOOZE", {"seconds": 3600, "reason": "rate limited"})
    before = utcnow()
    (outcome,) = harness.run_due()

    assert outcome.status is Status.PENDING
    action = fetch(harness.sessions, action_id)
    assert (action.status, action.attempts, action.lease_owner) == ("PENDING", 0, None)
    assert before + timedelta(seconds=3590) < action.not_before < utcnow() + timedelta(hours=1)
    assert harness.run_due() == []  # not due before its time
    assert committed_runs(harness) == 0  # the handler's writes rolled back
    assert any("snoozed until" in m and "rate limited" in m and "given back" in m
               for m in log_messages(harness, action_id))


def test_a_snooze_after_a_failed_attempt_keeps_that_attempt_counted(
    harness: ActionHarness,
) -> None:
    action_id = harness.enqueue("TEST_SNOOZE", {"fail_times": 1, "seconds": 60})
    (failed,) = harness.run_due()
    assert failed.status is Status.RETRY
    (snoozed,) = harness.run_due()

    assert snoozed.status is Status.RETRY
    action = fetch(harness.sessions, action_id)
    assert (action.status, action.attempts) == ("RETRY", 1)


def test_a_held_action_waits_for_a_person_with_its_reason(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_HOLD", {"reason": "post request timed out after sending"})
    (outcome,) = harness.run_due()

    assert outcome.status is Status.HELD
    action = fetch(harness.sessions, action_id)
    assert (action.status, action.attempts, action.finished_at) == ("HELD", 1, None)
    assert action.last_error == "held: post request timed out after sending"
    assert harness.run_due() == []  # neither claimable ...
    assert queue.prune(harness.engine, utcnow() + timedelta(days=1), include_failed=True) == 0
    assert fetch(harness.sessions, action_id).status == "HELD"  # ... nor pruned
    assert committed_runs(harness) == 0
    assert any("waits for a person" in m for m in log_messages(harness, action_id))


def test_a_released_action_runs_again_and_can_succeed(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_HOLD", {"times": 1}, max_attempts=1)
    harness.run_due()
    with harness.session() as session:
        released = queue.release_held(session, action_id)
        assert (released.status, released.max_attempts) == ("RETRY", 2)
    (outcome,) = harness.run_due()

    assert outcome.status is Status.SUCCESS
    assert fetch(harness.sessions, action_id).result == {"attempt": 2}
    assert "released by an operator" in log_messages(harness, action_id)


@pytest.mark.parametrize("succeeded", [True, False])
def test_resolving_a_held_action_records_the_persons_finding(
    harness: ActionHarness, succeeded: bool
) -> None:
    action_id = harness.enqueue("TEST_HOLD", {})
    harness.run_due()
    with harness.session() as session:
        queue.resolve_held(session, action_id, succeeded, "checked the platform")

    action = fetch(harness.sessions, action_id)
    status = "SUCCESS" if succeeded else "FAILED"
    assert action.status == status and action.finished_at is not None
    finding = f"resolved by an operator as {status}: checked the platform"
    assert finding in log_messages(harness, action_id)
    assert harness.run_due() == []


def test_only_held_actions_can_be_released_or_resolved(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_NOOP", {})
    with harness.session() as session, pytest.raises(InvalidTransition, match="PENDING"):
        queue.release_held(session, action_id)
    with harness.session() as session, pytest.raises(InvalidTransition, match="only HELD"):
        queue.resolve_held(session, action_id, True, None)


def test_health_names_how_many_actions_are_held_and_since_when(harness: ActionHarness) -> None:
    for _ in range(2):
        harness.enqueue("TEST_HOLD", {})
    harness.run_due()

    report = check_health(harness.engine, harness.registry)
    (check,) = [c for c in report.checks if c.name == "no action held for a person"]
    assert not check.ok
    assert check.detail.startswith("2 held (oldest since ")


def test_cli_lists_releases_and_resolves_held_actions(harness: ActionHarness, db_url: str) -> None:
    held = harness.enqueue("TEST_HOLD", {"times": 1})
    other = harness.enqueue("TEST_NOOP", {})
    third = harness.enqueue("TEST_HOLD", {})
    harness.run_due()

    listed = aol("actions", "list", "--status", "HELD", db_url=db_url)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [str(third), str(held)]

    released = aol("actions", "release", str(held), db_url=db_url)
    assert released.returncode == 0, released.stderr
    assert f"action {held} released: RETRY" in released.stdout
    resolved = aol("actions", "resolve", str(third), "--failed", "--note", "it never posted",
                   db_url=db_url)
    assert resolved.returncode == 0, resolved.stderr
    assert fetch(harness.sessions, held).status == "RETRY"
    failed = fetch(harness.sessions, third)
    assert failed.status == "FAILED"
    assert failed.last_error == "resolved by an operator as FAILED: it never posted"
    refused = aol("actions", "resolve", str(other), "--success", db_url=db_url)
    assert refused.returncode == 1 and "only HELD" in refused.stderr
