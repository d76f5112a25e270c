"""The original AICMO application's campaign data: its payload shapes are accepted, its
tables are never used as this plugin's, and ``aol db adopt`` takes them over."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from aol_core import InvalidPayload, Status, schema
from aol_core.adopt import AdoptionReport, adopt
from aol_core.compat import AOLAction, AOLDaemon
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.errors import ForeignTables
from aol_core.plugins import load_plugins
from aol_core.testing import ActionHarness, original
from sqlalchemy import Engine, insert, inspect, select, text
from sqlalchemy.orm import Session

from aol_campaign_ops import AuditEntry, Campaign, MetricEntry, Task
from aol_campaign_ops.testing import new_task

#: when the test started, naive, as the original stored every time (set per test: a time
#: taken at import ages during a long run, and "due soon" means within the hour)
NOW = datetime.utcnow()
HOUR = timedelta(hours=1)
CAMPAIGN = 5


@pytest.fixture(autouse=True)
def _now_is_when_the_test_starts() -> None:
    global NOW
    NOW = datetime.utcnow()


def original_campaign(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(original.campaigns), {
            "id": CAMPAIGN, "name": "Spring launch", "client_name": "Acme",
            "objective": "leads", "platforms": ["linkedin"], "start_date": NOW - 7 * 24 * HOUR,
            "end_date": NOW + 7 * 24 * HOUR, "cadence": {"linkedin": 3}, "primary_cta": "Book",
            "status": "PLANNED", "created_at": NOW - 7 * 24 * HOUR, "updated_at": NOW,
        })


@pytest.fixture
def original_engine(aol_database_url: str) -> Iterator[Engine]:
    """The original's database: its AOL tables with campaign actions, and campaign work."""
    engine = create_engine(aol_database_url)
    original.create_original_schema(engine, campaign_work=True)
    original_campaign(engine)
    task = {"campaign_id": CAMPAIGN, "task_type": "POST", "platform": "linkedin",
            "instructions_text": "post it", "status": "PENDING", "created_at": NOW,
            "updated_at": NOW}
    with engine.begin() as conn:
        conn.execute(insert(original.operator_tasks), [
            {**task, "id": 1, "title": "overdue post", "due_at": NOW - 2 * HOUR},
            {**task, "id": 2, "title": "post due soon", "due_at": NOW + HOUR / 2},
            {**task, "id": 3, "title": "done post", "due_at": NOW - HOUR, "status": "DONE"},
            {**task, "id": 4, "title": "ESCALATION: 3 Overdue Tasks", "task_type": "REVIEW",
             "platform": "internal", "status": "DUE", "due_at": NOW - 24 * HOUR},
        ])
        conn.execute(insert(original.metric_entries), [
            {"campaign_id": CAMPAIGN, "platform": "linkedin", "date": NOW, "created_at": NOW,
             "metric_name": name, "metric_value": value}
            for name, value in (("impressions", 900.0), ("leads", 3.0))
        ])
        conn.execute(insert(original.audit_log), [
            {"actor": "operator", "action": action, "entity_type": kind, "entity_id": entity,
             "after_json": after, "notes": notes, "created_at": NOW}
            for action, kind, entity, after, notes in (
                ("created_campaign", "campaign", CAMPAIGN, {"name": "Spring launch"}, None),
                ("completed_task", "task", 3, None, "posted"),
                ("logged_metric", "metric", 1, None, None),
            )
        ])
        conn.execute(insert(original.aol_actions), [
            {"idempotency_key": key, "action_type": kind, "payload_json": json.dumps(payload),
             "status": "PENDING", "attempts": 0, "created_at_utc": NOW}
            for key, kind, payload in (
                ("tick-1", "CAMPAIGN_TICK", {"campaign_id": CAMPAIGN}),
                ("escalate-1", "ESCALATE_OVERDUE_TASKS",
                 {"campaign_id": CAMPAIGN, "task_count": 1}),
                ("summary-1", "WEEKLY_CAMPAIGN_SUMMARY",
                 {"campaign_id": CAMPAIGN, "week_start": "2025-12-01T00:00:00"}),
            )
        ])
    yield engine
    engine.dispose()


def take_over(engine: Engine) -> AdoptionReport:
    settings = Settings()
    return adopt(engine, load_plugins(settings), settings)


def rows(engine: Engine, model: type) -> list[object]:
    with Session(engine) as session:
        return list(session.scalars(select(model).order_by(model.id)))  # type: ignore[attr-defined]


# --- legacy payload forms ---------------------------------------------------------------------


def test_the_original_week_start_datetime_summarizes_that_week(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    action = aol_harness.run("WEEKLY_CAMPAIGN_SUMMARY",
                             {"campaign_id": campaign_id, "week_start": "2026-03-02T00:00:00"})
    assert action.status == Status.SUCCESS
    assert action.result["week_start"] == "2026-03-02"  # type: ignore[index]


def test_a_week_start_that_is_not_midnight_utc_is_refused_at_enqueue(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    with pytest.raises(InvalidPayload, match="week_start"):
        aol_harness.enqueue("WEEKLY_CAMPAIGN_SUMMARY",
                            {"campaign_id": campaign_id, "week_start": "2026-03-02T10:00:00"})


def test_an_escalation_with_the_original_task_count_runs(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "late", due_in=-HOUR, status="OVERDUE")
    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id,
                                                        "task_count": 1})
    assert action.status == Status.SUCCESS
    assert action.result["review_task_id"] is not None  # type: ignore[index]


# --- the original's tables --------------------------------------------------------------------


def test_upgrade_refuses_the_original_campaign_tables_naming_them_and_adopt(
    aol_database_url: str,
) -> None:
    engine = create_engine(aol_database_url)
    original.original.create_all(engine, tables=list(original.COLLIDING_CAMPAIGN_TABLES))
    try:
        with pytest.raises(ForeignTables) as refused:
            schema.upgrade(engine, load_plugins(Settings()))
        assert set(inspect(engine).get_table_names()) == {
            table.name for table in original.COLLIDING_CAMPAIGN_TABLES}  # nothing half-done
    finally:
        engine.dispose()
    assert str(refused.value) == (
        "the database holds tables aol-campaign-ops did not create: campaign_ops_audit_log, "
        "campaign_ops_campaigns; to take over a database of the original AOL, run: "
        "aol db adopt")


def test_a_tick_on_the_original_campaign_tables_fails_naming_them_and_adopt(
    aol_database_url: str,
) -> None:
    """The original application, still deployed, recreated its tables after AOL's upgrade."""
    engine = create_engine(aol_database_url)
    schema.upgrade(engine, load_plugins(Settings()))
    with engine.begin() as conn:
        for table in ("campaign_ops_calendar_items", "campaign_ops_tasks",
                      "campaign_ops_metrics", "campaign_ops_audit_log", "campaign_ops_campaigns"):
            conn.execute(text(f"DROP TABLE {table}"))
    original.original.create_all(engine, tables=list(original.COLLIDING_CAMPAIGN_TABLES))
    original_campaign(engine)
    engine.dispose()
    harness = ActionHarness(aol_database_url)
    try:
        action = harness.run("CAMPAIGN_TICK", {"campaign_id": CAMPAIGN})
    finally:
        harness.close()
    assert action.status == Status.FAILED
    assert action.last_error == (
        "PermanentError: campaign_ops_campaigns and campaign_ops_audit_log are the original "
        "AICMO's tables, not aol-campaign-ops' (other columns); to take them over, run: "
        "aol db adopt")


def test_adopt_copies_campaigns_under_their_ids_and_moves_the_originals_aside(
    original_engine: Engine,
) -> None:
    report = take_over(original_engine)
    assert {old: new for old, new in report.moved if old.startswith("campaign_ops")} == {
        table: f"legacy_{table}" for table in
        ("campaign_ops_campaigns", "campaign_ops_operator_tasks", "campaign_ops_metric_entries",
         "campaign_ops_audit_log")}
    (campaign,) = rows(original_engine, Campaign)
    assert (campaign.id, campaign.name, campaign.status) == (  # type: ignore[attr-defined]
        CAMPAIGN, "Spring launch", "ACTIVE")


def test_adopt_copies_tasks_and_takes_the_deadline_off_generated_review_tasks(
    original_engine: Engine,
) -> None:
    take_over(original_engine)
    tasks = {t.title: t for t in rows(original_engine, Task)}  # type: ignore[attr-defined]
    assert set(tasks) == {"overdue post", "post due soon", "done post",
                          "ESCALATION: 3 Overdue Tasks"}
    assert tasks["ESCALATION: 3 Overdue Tasks"].due_at is None
    assert tasks["overdue post"].due_at.utcoffset() == timedelta(0)
    assert tasks["done post"].status == "DONE"
    assert tasks["overdue post"].details["instructions"] == "post it"


def test_adopt_keeps_a_task_of_a_type_and_status_aol_does_not_know_for_an_operator(
    original_engine: Engine,
) -> None:
    with original_engine.begin() as conn:  # the original stored any word in both
        conn.execute(insert(original.operator_tasks), {
            "id": 9, "campaign_id": CAMPAIGN, "task_type": "STORY", "platform": "instagram",
            "title": "story", "instructions_text": "film it", "status": "IN_PROGRESS",
            "due_at": NOW, "created_at": NOW, "updated_at": NOW})
    take_over(original_engine)
    (task,) = [t for t in rows(original_engine, Task) if t.title == "story"]  # type: ignore[attr-defined]
    assert (task.task_type, task.status) == ("MANUAL", "BLOCKED")  # type: ignore[attr-defined]
    assert {k: task.details[k] for k in ("original_task_type", "original_status")} == {  # type: ignore[attr-defined]
        "original_task_type": "STORY", "original_status": "IN_PROGRESS"}


def test_adopt_pauses_a_campaign_whose_status_the_original_did_not_define(
    original_engine: Engine,
) -> None:
    with original_engine.begin() as conn:
        conn.execute(original.campaigns.update().values(status="ARCHIVED"))
    take_over(original_engine)
    (campaign,) = rows(original_engine, Campaign)
    assert campaign.status == "PAUSED"  # type: ignore[attr-defined]


def test_adopt_copies_counted_metrics_and_audit_rows_about_campaigns_and_tasks(
    original_engine: Engine,
) -> None:
    take_over(original_engine)
    (metric,) = rows(original_engine, MetricEntry)
    assert (metric.platform, metric.impressions, metric.clicks) == (  # type: ignore[attr-defined]
        "linkedin", 900, 0)
    audit = rows(original_engine, AuditEntry)
    assert [(a.campaign_id, a.action, a.after) for a in audit] == [  # type: ignore[attr-defined]
        (CAMPAIGN, "created_campaign", {"name": "Spring launch"}),
        (CAMPAIGN, "completed_task", {"after": None, "notes": "posted"}),
    ]


def test_the_adopted_campaign_actions_run_on_the_adopted_campaign(
    original_engine: Engine, aol_database_url: str
) -> None:
    take_over(original_engine)
    assert AOLDaemon(aol_database_url).run(max_ticks=1) == 0
    with Session(original_engine) as session:
        statuses = {a.idempotency_key: a.status for a in session.scalars(select(AOLAction))}
    assert {statuses[k] for k in ("tick-1", "escalate-1", "summary-1")} == {"SUCCESS"}
    tasks = {t.title: t for t in rows(original_engine, Task)}  # type: ignore[attr-defined]
    assert (tasks["overdue post"].status, tasks["post due soon"].status) == ("OVERDUE", "DUE")
    assert tasks["overdue post"].escalated_at is not None
    reviews = [t for t in tasks.values() if t.title.startswith("Review 1 overdue task")]
    assert len(reviews) == 1


def test_adopting_again_copies_nothing(original_engine: Engine) -> None:
    take_over(original_engine)
    again = take_over(original_engine)
    assert not again.adopted
    assert len(rows(original_engine, Campaign)) == 1
    assert len(rows(original_engine, Task)) == 4
