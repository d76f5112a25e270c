"""The Python API for applications, and the demo actions."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness

from aol_campaign_ops import (
    CampaignNotFound,
    add_task,
    schedule_daily_tick,
    schedule_weekly_summary,
    set_task_status,
)
from aol_campaign_ops.testing import actions_of, as_dict, new_task, task, tasks


def test_add_task_refuses_a_naive_due_time(aol_harness: ActionHarness, campaign_id: int) -> None:
    with aol_harness.session() as session, pytest.raises(ValueError, match="timezone-aware"):
        add_task(session, campaign_id, "naive", due_at=datetime(2026, 3, 2, 9))


def test_add_task_refuses_an_unknown_campaign(aol_harness: ActionHarness) -> None:
    with aol_harness.session() as session, pytest.raises(CampaignNotFound):
        add_task(session, 404, "orphan")


def test_reopening_a_task_clears_its_escalation(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    late = new_task(
        aol_harness,
        campaign_id,
        "late",
        status="OVERDUE",
        due_at=datetime.fromisoformat("2026-03-02T09:00:00+00:00"),
    )
    aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id})

    with aol_harness.session() as session:
        set_task_status(session, late, "PENDING", actor="operator")

    assert (task(aol_harness, late).status, task(aol_harness, late).escalated_at) == (
        "PENDING",
        None,
    )


def test_scheduling_a_daily_tick_twice_enqueues_it_once(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    with aol_harness.session() as session:
        first = schedule_daily_tick(session, campaign_id, date(2026, 3, 2))
        again = schedule_daily_tick(session, campaign_id, date(2026, 3, 2))
        next_day = schedule_daily_tick(session, campaign_id, date(2026, 3, 3))

    assert (first.created, again.created, next_day.created) == (True, False, True)
    assert again.id == first.id
    assert len(actions_of(aol_harness, "CAMPAIGN_TICK")) == 2


def test_a_weekly_summary_is_scheduled_for_when_its_week_is_over(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    with aol_harness.session() as session:
        queued = schedule_weekly_summary(session, campaign_id, date(2026, 3, 2))

    action = aol_harness.action(queued.id)
    assert action.not_before.isoformat() == "2026-03-09T00:00:00+00:00"
    assert action.payload == {"campaign_id": campaign_id, "week_start": "2026-03-02"}


def test_the_example_actions_run_to_completion_on_the_demo_campaign(
    aol_harness: ActionHarness,
) -> None:
    with aol_harness.session() as session:
        examples = [
            (t, dict(p))
            for t, p in aol_harness.registry.example_actions(session)
            if t in ("CAMPAIGN_TICK", "WEEKLY_CAMPAIGN_SUMMARY")
        ]
    ids = [aol_harness.enqueue(t, p) for t, p in examples]

    aol_harness.run_due()
    aol_harness.run_due()  # the escalation the tick enqueued

    assert [aol_harness.action(i).status for i in ids] == [Status.SUCCESS, Status.SUCCESS]
    campaign_id = examples[0][1]["campaign_id"]
    kinds = [t.task_type for t in tasks(aol_harness, campaign_id)]
    assert kinds.count("REVIEW") == 1 and kinds.count("ANALYZE") == 1
    summary = as_dict(aol_harness.action(ids[1]).result)
    assert summary["tasks"] == {"planned": 3, "completed": 2, "overdue": 1}
    assert summary["top_platform"] == "twitter"


def test_example_actions_reuse_the_demo_campaign(aol_harness: ActionHarness) -> None:
    with aol_harness.session() as session:
        first = aol_harness.registry.example_actions(session)
    with aol_harness.session() as session:
        second = aol_harness.registry.example_actions(session)

    assert first == second
