"""WEEKLY_CAMPAIGN_SUMMARY on SQLite and PostgreSQL, against a hand-built week."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness

from aol_campaign_ops import record_metric
from aol_campaign_ops.testing import as_dict, audit_rows, new_campaign, new_task, snapshot, tasks

WEEK = "2026-03-02"
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
NEXT_MONDAY = MONDAY + timedelta(days=7)
SECOND = timedelta(seconds=1)


def metric(
    harness: ActionHarness,
    campaign_id: int,
    platform: str,
    when: datetime,
    impressions: int,
    engagement: int,
    clicks: int,
) -> None:
    with harness.session() as session:
        record_metric(
            session,
            campaign_id,
            platform,
            impressions=impressions,
            engagement=engagement,
            clicks=clicks,
            recorded_at=when,
        )


@pytest.fixture
def week(aol_harness: ActionHarness, campaign_id: int) -> int:
    """Tasks and metrics inside the week, on its edges, outside it, and in another campaign."""
    h, c = aol_harness, campaign_id
    new_task(h, c, "done on Monday 00:00", due_at=MONDAY, status="DONE")
    new_task(h, c, "done Wednesday", due_at=MONDAY + timedelta(days=2), status="DONE")
    new_task(h, c, "overdue Thursday", due_at=MONDAY + timedelta(days=3), status="OVERDUE")
    new_task(h, c, "missed Friday", due_at=MONDAY + timedelta(days=4), status="MISSED")
    new_task(h, c, "blocked Saturday", due_at=MONDAY + timedelta(days=5), status="BLOCKED")
    new_task(h, c, "pending Sunday 23:59:59", due_at=NEXT_MONDAY - SECOND)
    new_task(h, c, "next week", due_at=NEXT_MONDAY, status="DONE")
    new_task(h, c, "last week", due_at=MONDAY - SECOND, status="OVERDUE")
    new_task(h, c, "no deadline", status="DONE")
    metric(h, c, "twitter", MONDAY, 100, 10, 5)
    metric(h, c, "twitter", MONDAY + timedelta(days=3), 200, 20, 10)
    metric(h, c, "linkedin", MONDAY + timedelta(days=4), 50, 30, 30)
    metric(h, c, "instagram", NEXT_MONDAY, 999, 999, 999)
    metric(h, c, "facebook", MONDAY - SECOND, 999, 999, 999)
    other = new_campaign(h, "Other campaign")
    new_task(h, other, "other campaign", due_at=MONDAY + timedelta(days=1), status="DONE")
    metric(h, other, "mastodon", MONDAY + timedelta(days=1), 999, 999, 999)
    return c


def test_summary_numbers_are_exact_for_a_hand_built_week(
    aol_harness: ActionHarness, week: int
) -> None:
    action = aol_harness.run("WEEKLY_CAMPAIGN_SUMMARY", {"campaign_id": week, "week_start": WEEK})

    assert action.status == Status.SUCCESS, action.last_error
    result = as_dict(action.result)
    assert result["week_start"] == "2026-03-02"
    assert result["week_end"] == "2026-03-09"
    assert result["tasks"] == {"planned": 6, "completed": 2, "overdue": 2}
    assert result["metrics"] == {
        "linkedin": {"entries": 1, "impressions": 50, "engagement": 30, "clicks": 30},
        "twitter": {"entries": 2, "impressions": 300, "engagement": 30, "clicks": 15},
    }
    assert result["top_platform"] == "linkedin"


def test_summary_is_kept_in_an_audit_row_that_an_analyze_task_points_at(
    aol_harness: ActionHarness, week: int
) -> None:
    action = aol_harness.run("WEEKLY_CAMPAIGN_SUMMARY", {"campaign_id": week, "week_start": WEEK})

    [row] = [a for a in audit_rows(aol_harness, week) if a.action == "weekly_summary"]
    [analyze] = [t for t in tasks(aol_harness, week) if t.task_type == "ANALYZE"]
    assert as_dict(row.after)["tasks"] == as_dict(action.result)["tasks"]
    assert as_dict(row.after)["top_platform"] == "linkedin"
    assert analyze.details["audit_id"] == row.id == as_dict(action.result)["audit_id"]
    assert analyze.id == as_dict(action.result)["analyze_task_id"]
    assert analyze.due_at is None


def test_rerunning_the_summary_of_a_week_does_not_duplicate_it(
    aol_harness: ActionHarness, week: int
) -> None:
    payload = {"campaign_id": week, "week_start": WEEK}
    first = aol_harness.run("WEEKLY_CAMPAIGN_SUMMARY", payload)

    second = aol_harness.run("WEEKLY_CAMPAIGN_SUMMARY", payload)

    assert second.status == Status.SUCCESS, second.last_error
    assert (as_dict(second.result)["created"], as_dict(second.result)["updated"]) == (False, False)
    assert as_dict(second.result)["analyze_task_id"] == as_dict(first.result)["analyze_task_id"]
    assert len([t for t in tasks(aol_harness, week) if t.task_type == "ANALYZE"]) == 1
    assert len(audit_rows(aol_harness, week)) == 1


def test_rerunning_after_late_metrics_updates_the_same_analyze_task(
    aol_harness: ActionHarness, week: int
) -> None:
    payload = {"campaign_id": week, "week_start": WEEK}
    first = aol_harness.run("WEEKLY_CAMPAIGN_SUMMARY", payload)
    metric(aol_harness, week, "twitter", MONDAY + timedelta(days=6), 10, 50, 0)

    second = aol_harness.run("WEEKLY_CAMPAIGN_SUMMARY", payload)

    assert as_dict(second.result)["updated"] is True
    assert as_dict(second.result)["top_platform"] == "twitter"
    [analyze] = [t for t in tasks(aol_harness, week) if t.task_type == "ANALYZE"]
    assert analyze.id == as_dict(first.result)["analyze_task_id"]
    assert analyze.details["audit_id"] == as_dict(second.result)["audit_id"]
    update = audit_rows(aol_harness, week)[-1]
    assert update.action == "weekly_summary_updated"
    assert as_dict(update.before)["top_platform"] == "linkedin"


def test_a_week_without_metrics_has_no_top_platform(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "done", due_at=MONDAY, status="DONE")

    action = aol_harness.run(
        "WEEKLY_CAMPAIGN_SUMMARY", {"campaign_id": campaign_id, "week_start": WEEK}
    )

    assert as_dict(action.result)["metrics"] == {}
    assert as_dict(action.result)["top_platform"] is None
    assert as_dict(action.result)["tasks"] == {"planned": 1, "completed": 1, "overdue": 0}


def test_summary_in_proof_mode_writes_nothing_and_records_the_summary(
    aol_harness: ActionHarness, week: int
) -> None:
    before = snapshot(aol_harness, week)

    action = aol_harness.run(
        "WEEKLY_CAMPAIGN_SUMMARY", {"campaign_id": week, "week_start": WEEK}, proof_mode=True
    )

    assert action.status == Status.SUCCESS, action.last_error
    assert snapshot(aol_harness, week) == before
    artifacts = {a.name: a for a in aol_harness.artifacts(action.id)}
    assert sorted(artifacts) == ["report.html", "report.md", "weekly-summary.json"]
    proof = json.loads(artifacts["weekly-summary.json"].content)
    assert proof["summary"]["tasks"] == {"planned": 6, "completed": 2, "overdue": 2}
    assert proof["would_create_analyze_task"] is True


def test_an_impossible_week_start_fails_permanently_after_one_attempt(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    action = aol_harness.run(
        "WEEKLY_CAMPAIGN_SUMMARY",
        {"campaign_id": campaign_id, "week_start": "2026-02-30"},
        max_attempts=5,
    )

    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert "not a date" in (action.last_error or "")


def test_summary_of_an_unknown_campaign_fails_permanently_after_one_attempt(
    aol_harness: ActionHarness,
) -> None:
    action = aol_harness.run(
        "WEEKLY_CAMPAIGN_SUMMARY", {"campaign_id": 7, "week_start": WEEK}, max_attempts=5
    )

    assert action.status == Status.FAILED
    assert action.attempts == 1
