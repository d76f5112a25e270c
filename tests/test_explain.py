"""``aol explain``: each reason an action can be where it is, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta

import pytest

from aol_core import flow, queue
from aol_core.control import set_flag
from aol_core.errors import ActionNotFound
from aol_core.explain import Explanation, explain
from aol_core.models import Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow
from aol_core.worker_registry import WorkerIdentity, register
from helpers import aol, claim_all, pass_time

EVERY_TEST_TYPE = ("TEST_NOOP", "TEST_FAIL", "TEST_SNOOZE", "TEST_HOLD", "TEST_LIMITED_RATE",
                   "TEST_LIMITED_CAP")


def explained(harness: ActionHarness, action_id: int) -> Explanation:
    with harness.engine.connect() as conn:
        return explain(conn, harness.registry, action_id)


def codes(harness: ActionHarness, action_id: int) -> list[str]:
    return [reason.code for reason in explained(harness, action_id).reasons]


def message(harness: ActionHarness, action_id: int, code: str) -> str:
    (found,) = [r.message for r in explained(harness, action_id).reasons if r.code == code]
    return found


def live_worker(harness: ActionHarness, name: str = "w",
                action_types: Sequence[str] = EVERY_TEST_TYPE) -> None:
    """Register a worker that heartbeats for the next hour, running ``action_types``."""
    with harness.engine.begin() as conn:
        register(conn, WorkerIdentity(name, "host", 1), versions={}, action_types=action_types,
                 degraded=False, now=utcnow(), alive_for=timedelta(hours=1))


def limit(harness: ActionHarness, action_type: str, *, rate: tuple[int, timedelta] | None = None,
          concurrency: int | None = None) -> flow.Limits:
    with harness.engine.begin() as conn:
        return flow.set_override(conn, action_type, rate, concurrency, None)


def claim_limited(harness: ActionHarness, action_type: str, limits: flow.Limits) -> int:
    """Claim as a worker does for a limited type; how many were claimed."""
    return len(flow.claim_type(harness.engine, action_type, limits, worker="w", limit=100,
                               lease_seconds=3600, now=utcnow()))


def test_a_due_action_nothing_holds_is_ready(harness: ActionHarness) -> None:
    live_worker(harness)
    action_id = harness.enqueue("TEST_NOOP", {})

    assert codes(harness, action_id) == ["ready"]


def test_an_action_waits_for_its_not_before_time_and_says_when(harness: ActionHarness) -> None:
    live_worker(harness)
    due = utcnow() + timedelta(hours=2)
    action_id = harness.enqueue("TEST_NOOP", {}, not_before=due)

    (reason,) = explained(harness, action_id).reasons
    assert reason.code == "not_due"
    assert reason.until == due
    assert f"{due:%Y-%m-%d %H:%M:%S} UTC" in reason.message


def test_an_action_behind_due_actions_of_higher_or_equal_priority_counts_them(
    harness: ActionHarness,
) -> None:
    live_worker(harness)
    harness.enqueue("TEST_NOOP", {}, priority=5)
    harness.enqueue("TEST_NOOP", {})
    action_id = harness.enqueue("TEST_NOOP", {})
    harness.enqueue("TEST_NOOP", {})  # after it: not ahead
    harness.enqueue("TEST_NOOP", {}, priority=-1)  # lower: not ahead
    harness.enqueue("TEST_FAIL", {}, priority=9)  # another type: not ahead

    assert codes(harness, action_id) == ["behind"]
    assert message(harness, action_id, "behind").startswith("behind 2 due TEST_NOOP action(s)")


def test_a_rate_limited_action_names_the_limit_and_when_it_may_start(
    harness: ActionHarness,
) -> None:
    live_worker(harness)
    limits = limit(harness, "TEST_LIMITED_RATE", rate=(1, timedelta(hours=1)))
    harness.enqueue("TEST_LIMITED_RATE", {})
    action_id = harness.enqueue("TEST_LIMITED_RATE", {})
    assert claim_limited(harness, "TEST_LIMITED_RATE", limits) == 1

    (reason,) = explained(harness, action_id).reasons
    assert reason.code == "rate_limited"
    assert "1 of 1 starts in the last 1:00:00" in reason.message
    assert reason.until is not None and reason.until > utcnow() + timedelta(minutes=50)


def test_a_capped_action_names_the_cap(harness: ActionHarness) -> None:
    live_worker(harness)
    limits = limit(harness, "TEST_LIMITED_CAP", concurrency=1)
    harness.enqueue("TEST_LIMITED_CAP", {})
    action_id = harness.enqueue("TEST_LIMITED_CAP", {})
    assert claim_limited(harness, "TEST_LIMITED_CAP", limits) == 1

    assert codes(harness, action_id) == ["capped"]
    assert "1 of 1 TEST_LIMITED_CAP action(s) run at once" in message(
        harness, action_id, "capped")


def test_a_limit_with_room_left_does_not_hold_an_action(harness: ActionHarness) -> None:
    live_worker(harness)
    limit(harness, "TEST_LIMITED_CAP", concurrency=5)
    action_id = harness.enqueue("TEST_LIMITED_CAP", {})

    assert codes(harness, action_id) == ["ready"]


def test_a_type_no_live_worker_runs_names_the_plugin_that_would(
    harness: ActionHarness,
) -> None:
    live_worker(harness, action_types=["TEST_FAIL"])
    action_id = harness.enqueue("TEST_NOOP", {})

    assert codes(harness, action_id) == ["no_live_worker"]
    assert "plugin aol-test-actions" in message(harness, action_id, "no_live_worker")


def test_a_type_no_installed_plugin_declares_says_so(harness: ActionHarness) -> None:
    live_worker(harness)
    action_id = harness.enqueue("NOBODY_RUNS_THIS", {}, force=True)

    assert codes(harness, action_id) == ["no_plugin"]


@pytest.mark.parametrize(("flag", "code"), [("paused", "paused"), ("killed", "killed")])
def test_paused_or_killed_workers_hold_every_waiting_action(
    harness: ActionHarness, flag: str, code: str,
) -> None:
    live_worker(harness)
    action_id = harness.enqueue("TEST_NOOP", {})
    with harness.engine.begin() as conn:
        set_flag(conn, flag, True)

    assert codes(harness, action_id) == [code]


@pytest.mark.parametrize("forced_by", ["its own flag", "the global switch"])
def test_forced_proof_mode_is_named_and_does_not_hide_readiness(
    harness: ActionHarness, forced_by: str,
) -> None:
    live_worker(harness)
    action_id = harness.enqueue("TEST_NOOP", {}, proof_mode=forced_by == "its own flag")
    if forced_by == "the global switch":
        with harness.engine.begin() as conn:
            set_flag(conn, "proof_mode", True)

    assert codes(harness, action_id) == ["proof_mode", "ready"]
    assert forced_by in message(harness, action_id, "proof_mode")


def test_a_snoozed_action_says_its_handler_snoozed_it_and_until_when(
    harness: ActionHarness,
) -> None:
    live_worker(harness)
    action_id = harness.enqueue("TEST_SNOOZE", {"seconds": 3600, "reason": "quota spent"})
    harness.run_due()

    (reason,) = explained(harness, action_id).reasons
    assert reason.code == "snoozed"
    assert "quota spent" in reason.message
    assert reason.until == harness.action(action_id).not_before


def test_a_failed_attempt_waiting_for_its_retry_names_the_error_and_the_time(
    harness: ActionHarness,
) -> None:
    live_worker(harness)
    action_id = harness.enqueue("TEST_FAIL", {"mode": "retryable", "delay": 3600})
    harness.run_due()

    (reason,) = explained(harness, action_id).reasons
    assert reason.code == "backoff"
    assert "attempt 1 of" in reason.message and "try later" in reason.message
    assert reason.until == harness.action(action_id).not_before


def test_a_held_action_says_why_and_what_to_run(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_HOLD", {"reason": "post may be online"})
    harness.run_due()

    assert codes(harness, action_id) == ["held"]
    text = message(harness, action_id, "held")
    assert "post may be online" in text and f"aol actions release {action_id}" in text


def test_a_running_action_names_its_live_worker(harness: ActionHarness) -> None:
    live_worker(harness)
    action_id = harness.enqueue("TEST_NOOP", {})
    claim_all(harness)

    assert codes(harness, action_id) == ["running"]
    assert "leased by worker w" in message(harness, action_id, "running")
    assert "the worker is alive" in message(harness, action_id, "running")


def test_a_running_action_of_a_worker_gone_says_the_lease_will_run_out(
    harness: ActionHarness,
) -> None:
    action_id = harness.enqueue("TEST_NOOP", {})
    claim_all(harness)

    assert codes(harness, action_id) == ["running"]
    assert "that worker is not alive" in message(harness, action_id, "running")


def test_an_expired_lease_of_a_worker_gone_says_it_will_be_retried(
    harness: ActionHarness,
) -> None:
    action_id = harness.enqueue("TEST_NOOP", {})
    claim_all(harness)
    pass_time(harness.engine, timedelta(hours=1))

    assert codes(harness, action_id) == ["lease_expired"]
    assert "returns it to RETRY" in message(harness, action_id, "lease_expired")


@pytest.mark.parametrize(("payload", "status", "words"), [
    ({}, Status.SUCCESS, "after 1 attempt(s)"),
    ({"mode": "permanent"}, Status.FAILED, "failed permanently"),
    ({"mode": "error"}, Status.DLQ, "all 1 attempts used up"),
])
def test_a_finished_action_says_how_and_after_how_many_attempts(
    harness: ActionHarness, payload: dict[str, str], status: Status, words: str,
) -> None:
    action_id = harness.enqueue("TEST_FAIL" if payload else "TEST_NOOP", payload,
                                max_attempts=1)
    harness.run_due()

    found = explained(harness, action_id)
    assert found.status == status
    assert [r.code for r in found.reasons] == ["finished"]
    assert words in found.reasons[0].message


def test_a_cancelled_action_says_an_operator_cancelled_it(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_NOOP", {})
    with harness.session() as session:
        queue.cancel_action(session, action_id)

    assert "cancelled by an operator" in message(harness, action_id, "finished")


def test_the_explanation_carries_the_newest_log_lines(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_FAIL", {"mode": "retryable", "delay": 3600})
    harness.run_due()

    assert "about to fail" in [line["message"] for line in explained(harness, action_id).log]


def test_an_unknown_id_is_refused(harness: ActionHarness) -> None:
    with pytest.raises(ActionNotFound, match="no action with id 999"):
        explained(harness, 999)


def test_cli_explains_in_words_and_in_json(harness: ActionHarness, db_url: str) -> None:
    live_worker(harness)
    action_id = harness.enqueue("TEST_NOOP", {}, not_before=utcnow() + timedelta(hours=1))

    words = aol("explain", str(action_id), db_url=db_url)
    as_json = aol("explain", str(action_id), "--json", db_url=db_url)

    assert words.returncode == 0, words.stderr
    assert words.stdout.startswith(f"action {action_id} (TEST_NOOP) is PENDING")
    assert "- waits for its not-before time" in words.stdout
    assert as_json.returncode == 0, as_json.stderr
    reply = json.loads(as_json.stdout)
    assert reply["id"] == action_id
    assert [r["code"] for r in reply["reasons"]] == ["not_due"]


def test_cli_refuses_an_unknown_id_in_one_line(harness: ActionHarness, db_url: str) -> None:
    done = aol("explain", "999", db_url=db_url)

    assert done.returncode == 1
    assert done.stderr == "aol: error: no action with id 999\n"
