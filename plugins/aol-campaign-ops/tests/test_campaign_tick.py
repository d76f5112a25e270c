"""CAMPAIGN_TICK on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aol_core import InvalidPayload, Status
from aol_core.testing import ActionHarness

from aol_campaign_ops.common import escalation_key
from aol_campaign_ops.testing import (
    actions_of,
    as_dict,
    audit_rows,
    new_task,
    snapshot,
    task,
    tasks,
)

HOUR = timedelta(hours=1)


def test_tick_marks_past_due_tasks_overdue_and_tasks_due_within_the_hour_due(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(aol_harness, campaign_id, "late", due_in=-2 * HOUR)
    late_due = new_task(aol_harness, campaign_id, "late and DUE", due_in=-HOUR / 6, status="DUE")
    soon = new_task(aol_harness, campaign_id, "soon", due_in=HOUR / 2)
    later = new_task(aol_harness, campaign_id, "later", due_in=3 * HOUR)
    undated = new_task(aol_harness, campaign_id, "no deadline")
    done = new_task(aol_harness, campaign_id, "done", due_in=-24 * HOUR, status="DONE")

    action = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, only_this_type=True)

    assert action.status == Status.SUCCESS, action.last_error
    status = {t.id: t.status for t in tasks(aol_harness, campaign_id)}
    assert status == {
        late: "OVERDUE",
        late_due: "OVERDUE",
        soon: "DUE",
        later: "PENDING",
        undated: "PENDING",
        done: "DONE",
    }
    assert as_dict(action.result)["marked_overdue"] == 2
    assert as_dict(action.result)["marked_due"] == 1
    assert as_dict(action.result)["awaiting_escalation"] == 2


def test_tick_records_its_status_changes_in_the_audit_log(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(aol_harness, campaign_id, "late", due_in=-HOUR)

    action = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, only_this_type=True)

    [row] = audit_rows(aol_harness, campaign_id)
    assert (row.action, row.before, row.after) == (
        "campaign_tick",
        {str(late): "PENDING"},
        {str(late): "OVERDUE"},
    )
    assert row.actor == f"aol:CAMPAIGN_TICK#{action.id}"


def test_tick_enqueues_an_escalation_keyed_by_campaign_and_overdue_task_ids(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(aol_harness, campaign_id, "late", due_in=-HOUR)
    later = new_task(aol_harness, campaign_id, "later", due_in=-2 * HOUR)

    action = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, only_this_type=True)

    [escalation] = actions_of(aol_harness, "ESCALATE_OVERDUE_TASKS")
    due = [(t, task(aol_harness, t).due_at) for t in (later, late)]
    assert escalation.idempotency_key == escalation_key(campaign_id, due)
    assert escalation.idempotency_key.startswith(
        f"campaign-ops:escalate:{campaign_id}:{min(late, later)},{max(late, later)}:"
    )
    assert escalation.payload == {"campaign_id": campaign_id}
    assert escalation.status == Status.PENDING
    assert as_dict(action.result)["escalation"] == {
        "action_id": escalation.id,
        "created": True,
        "idempotency_key": escalation.idempotency_key,
    }


def test_ticking_twice_enqueues_one_escalation(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "late", due_in=-HOUR)

    aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, only_this_type=True)
    second = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, only_this_type=True)

    assert len(actions_of(aol_harness, "ESCALATE_OVERDUE_TASKS")) == 1
    assert as_dict(second.result)["escalation"]["created"] is False


def test_a_task_overdue_after_an_escalation_gets_an_escalation_of_its_own(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "first", due_in=-HOUR)
    aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id})
    aol_harness.run_due()  # the escalation
    second = new_task(aol_harness, campaign_id, "second", due_in=-HOUR)

    aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, only_this_type=True)

    _, new_escalation = actions_of(aol_harness, "ESCALATE_OVERDUE_TASKS")
    assert new_escalation.idempotency_key == escalation_key(
        campaign_id, [(second, task(aol_harness, second).due_at)]
    )


def test_tick_of_an_unknown_campaign_fails_permanently_after_one_attempt(
    aol_harness: ActionHarness,
) -> None:
    action = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": 999}, max_attempts=5)

    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert "no campaign with id 999" in (action.last_error or "")


def test_tick_in_proof_mode_writes_nothing_and_records_what_would_change(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(aol_harness, campaign_id, "late", due_in=-HOUR)
    soon = new_task(aol_harness, campaign_id, "soon", due_in=HOUR / 2)
    before = snapshot(aol_harness, campaign_id)

    action = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, proof_mode=True)

    assert action.status == Status.SUCCESS, action.last_error
    assert snapshot(aol_harness, campaign_id) == before
    assert actions_of(aol_harness, "ESCALATE_OVERDUE_TASKS") == []
    [artifact] = aol_harness.artifacts(action.id)
    proof = json.loads(artifact.content)
    assert [t["id"] for t in proof["would_mark_overdue"]] == [late]
    assert [t["id"] for t in proof["would_mark_due"]] == [soon]
    assert proof["would_enqueue_escalation"]["task_ids"] == [late]
    assert as_dict(action.result)["sha256"] == artifact.sha256


def test_tick_rolls_back_its_status_changes_when_a_later_step_fails(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(aol_harness, campaign_id, "late", due_in=-HOUR)
    # Occupy the escalation's key with another payload, so the tick's enqueue (its last step,
    # after marking the task OVERDUE) raises IdempotencyConflict.
    key = escalation_key(campaign_id, [(late, task(aol_harness, late).due_at)])
    aol_harness.enqueue(
        "ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id + 1}, idempotency_key=key
    )

    action = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, only_this_type=True)

    assert action.status == Status.RETRY
    assert "IdempotencyConflict" in (action.last_error or "")
    assert task(aol_harness, late).status == "PENDING"
    assert audit_rows(aol_harness, campaign_id) == []


@pytest.mark.parametrize(
    "payload",
    [{"campaign_id": 0}, {"campaign_id": "1"}, {}, {"campaign_id": 1, "force": True}],
    ids=["zero", "text", "missing", "extra-field"],
)
def test_tick_schema_refuses_bad_payloads(
    aol_harness: ActionHarness, payload: dict[str, object]
) -> None:
    with pytest.raises(InvalidPayload):
        aol_harness.enqueue("CAMPAIGN_TICK", dict(payload))
