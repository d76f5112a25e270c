"""ESCALATE_OVERDUE_TASKS on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from aol_core import Status
from aol_core.testing import ActionHarness

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


def reviews(harness: ActionHarness, campaign_id: int) -> list[object]:
    return [t for t in tasks(harness, campaign_id) if t.task_type == "REVIEW"]


def test_escalation_creates_one_review_task_without_deadline_listing_the_overdue_tasks(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    first = new_task(aol_harness, campaign_id, "Post teaser", due_in=-2 * HOUR, status="OVERDUE")
    second = new_task(aol_harness, campaign_id, "Answer comments", due_in=-HOUR, status="OVERDUE")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id})

    assert action.status == Status.SUCCESS, action.last_error
    [review] = [t for t in tasks(aol_harness, campaign_id) if t.task_type == "REVIEW"]
    assert review.due_at is None
    assert review.status == "PENDING"
    assert "Post teaser" in review.title and "Answer comments" in review.title
    listed = review.details["overdue_tasks"]
    assert [t["id"] for t in listed] == [first, second]
    assert listed[0]["title"] == "Post teaser"
    assert listed[0]["due_at"] == task(aol_harness, first).due_at.isoformat()  # type: ignore[union-attr]
    assert action.result == {
        "campaign_id": campaign_id,
        "review_task_id": review.id,
        "escalated_task_ids": [first, second],
        "mailed": None,  # the campaign has no owner e-mail
    }


def test_escalation_marks_the_listed_tasks_escalated_and_writes_an_audit_row(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(aol_harness, campaign_id, "late", due_in=-HOUR, status="OVERDUE")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id})

    assert task(aol_harness, late).escalated_at is not None
    [row] = audit_rows(aol_harness, campaign_id)
    assert row.action == "escalate_overdue_tasks"
    assert row.actor == f"aol:ESCALATE_OVERDUE_TASKS#{action.id}"
    assert row.before == {"task_ids": [late], "escalated_at": None}
    assert as_dict(row.after)["review_task_id"] == as_dict(action.result)["review_task_id"]


def test_escalating_twice_creates_one_review_task(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "late", due_in=-HOUR, status="OVERDUE")

    aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id})
    second = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id})

    assert second.status == Status.SUCCESS, second.last_error
    assert as_dict(second.result)["review_task_id"] is None
    assert len(reviews(aol_harness, campaign_id)) == 1


def test_the_review_task_never_becomes_overdue_so_escalation_does_not_feed_itself(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "late", due_in=-HOUR)
    aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id})
    aol_harness.run_due()  # runs the escalation the tick enqueued

    for _ in range(3):  # later ticks, each running whatever they enqueue
        aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id})
        assert aol_harness.run_due() == []

    [review] = reviews(aol_harness, campaign_id)
    assert (review.status, review.due_at) == ("PENDING", None)  # type: ignore[attr-defined]
    assert len(actions_of(aol_harness, "ESCALATE_OVERDUE_TASKS")) == 1


def test_escalation_in_proof_mode_writes_nothing_and_describes_the_review_task(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(aol_harness, campaign_id, "Post teaser", due_in=-HOUR, status="OVERDUE")
    before = snapshot(aol_harness, campaign_id)

    action = aol_harness.run(
        "ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id}, proof_mode=True
    )

    assert action.status == Status.SUCCESS, action.last_error
    assert snapshot(aol_harness, campaign_id) == before
    [artifact] = aol_harness.artifacts(action.id)
    assert artifact.name == "review-task.json"
    proof = json.loads(artifact.content)
    assert proof["would_create"]["task_type"] == "REVIEW"
    assert proof["would_create"]["due_at"] is None
    assert "Post teaser" in proof["would_create"]["title"]
    assert proof["would_mark_escalated"] == [late]


def test_escalation_without_overdue_tasks_creates_nothing(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "on time", due_in=HOUR)

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id})

    assert action.status == Status.SUCCESS, action.last_error
    assert reviews(aol_harness, campaign_id) == []
    assert audit_rows(aol_harness, campaign_id) == []


def test_escalation_of_an_unknown_campaign_fails_permanently_after_one_attempt(
    aol_harness: ActionHarness,
) -> None:
    action = aol_harness.run(
        "ESCALATE_OVERDUE_TASKS", {"campaign_id": 42}, max_attempts=5, only_this_type=True
    )

    assert action.status == Status.FAILED
    assert action.attempts == 1
