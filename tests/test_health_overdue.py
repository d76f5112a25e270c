"""``aol health`` fails, naming them, for actions running too long and for a lagging queue."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from aol_core.config import Settings
from aol_core.health import Check, check_health
from aol_core.models import Action
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow
from helpers import claim_all

SETTINGS = Settings(lease_seconds=60, health_max_lag=timedelta(minutes=15))


def _check(harness: ActionHarness, name: str) -> Check:
    report = check_health(harness.engine, harness.registry, SETTINGS)
    (check,) = [c for c in report.checks if c.name == name]
    return check


def _started(harness: ActionHarness, action_id: int, ago: timedelta) -> None:
    with harness.session() as session:
        session.execute(update(Action).where(Action.id == action_id).values(
            started_at=utcnow() - ago))


def test_an_action_running_past_several_leases_fails_health(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_NOOP", {})
    claim_all(harness)
    _started(harness, action_id, timedelta(minutes=4))  # past three 60 s leases
    check = _check(harness, "no action running too long")
    assert not check.ok
    assert f"action {action_id} (TEST_NOOP) has run 0:04:" in check.detail
    assert "on w, past its 3 leases" in check.detail


def test_an_action_running_past_its_types_timeout_fails_health(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_SLOW", {})  # its timeout is 1 s
    claim_all(harness)
    _started(harness, action_id, timedelta(seconds=30))
    check = _check(harness, "no action running too long")
    assert not check.ok
    assert f"action {action_id} (TEST_SLOW)" in check.detail and "past its timeout" in check.detail


def test_actions_running_within_their_limits_pass(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_NOOP", {})
    claim_all(harness)
    _started(harness, action_id, timedelta(seconds=30))
    assert _check(harness, "no action running too long").ok


def test_a_due_action_waiting_past_the_lag_limit_fails_health(harness: ActionHarness) -> None:
    harness.enqueue("TEST_NOOP", {}, not_before=utcnow() - timedelta(minutes=20))
    harness.enqueue("TEST_RECORD", {}, not_before=utcnow() - timedelta(minutes=1))
    check = _check(harness, "queue lag")
    assert not check.ok
    assert "the oldest due TEST_NOOP action has waited 0:20:" in check.detail
    assert "TEST_RECORD" not in check.detail


def test_a_queue_within_the_lag_limit_passes(harness: ActionHarness) -> None:
    harness.enqueue("TEST_NOOP", {}, not_before=utcnow() - timedelta(minutes=1))
    assert _check(harness, "queue lag").ok
