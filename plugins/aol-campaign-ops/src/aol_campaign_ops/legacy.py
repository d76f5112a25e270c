"""The original AICMO application's campaign tables: refused as they are, taken over by
``aol db adopt``.

Two of them have this plugin's names (``campaign_ops_campaigns``, ``campaign_ops_audit_log``)
with other columns. Used as they are, a tick on one of the original's campaigns found no
tasks and reported SUCCESS having changed nothing; so handlers refuse to run on them, and
adoption moves them aside and copies what carries over.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any, cast

from aol_core import PermanentError, utcnow
from aol_core.adopt import AdoptionReport, has_column, insert_keeping_ids, move_aside
from aol_core.compat import as_utc
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from aol_campaign_ops.models import (
    AuditEntry,
    Campaign,
    CampaignStatus,
    MetricEntry,
    Task,
    TaskStatus,
    TaskType,
    metadata,
)

#: the original's campaign tables this plugin takes over, each told from ours by a column
#: only the original's has
ORIGINAL_TABLES = {
    "campaign_ops_campaigns": "client_name",
    "campaign_ops_operator_tasks": "instructions_text",
    "campaign_ops_metric_entries": "metric_name",
    "campaign_ops_audit_log": "entity_type",
}
#: the ones whose names are also ours
COLLIDING = ("campaign_ops_campaigns", "campaign_ops_audit_log")

CAMPAIGN_STATUSES = {"PLANNED": CampaignStatus.ACTIVE, "ACTIVE": CampaignStatus.ACTIVE,
                     "PAUSED": CampaignStatus.PAUSED, "COMPLETED": CampaignStatus.ENDED}
#: the original stored any word as a campaign's status: one it did not define is PAUSED,
#: so adoption never starts work on a campaign its operators had set aside
UNKNOWN_CAMPAIGN_STATUS = CampaignStatus.PAUSED
#: the original stored any word as a task's type and status: an unknown type is MANUAL, an
#: unknown status BLOCKED (an operator looks at it); the original word stays in ``details``
UNKNOWN_TASK_TYPE, UNKNOWN_TASK_STATUS = TaskType.MANUAL.value, TaskStatus.BLOCKED.value
METRICS = ("impressions", "engagement", "clicks")
#: the original's daemon created its escalation and summary tasks due at once, on the
#: platform "internal"; with a deadline they would fall overdue and escalate in turn
GENERATED = (TaskType.REVIEW.value, TaskType.ANALYZE.value)

TASK_TYPES = frozenset(TaskType)
TASK_STATUSES = frozenset(TaskStatus)

CAMPAIGNS, TASKS, METRIC_ENTRIES, AUDIT = (
    cast(Table, model.__table__) for model in (Campaign, Task, MetricEntry, AuditEntry)
)

_checked: weakref.WeakSet[Engine] = weakref.WeakSet()


def original_tables(conn: Connection) -> list[str]:
    return [table for table, marker in ORIGINAL_TABLES.items() if has_column(conn, table, marker)]


def refuse_original_tables(session: Session) -> None:
    """Stop (once per engine) if this plugin's table names hold the original's tables."""
    engine = session.get_bind()
    if not isinstance(engine, Engine) or engine in _checked:
        return
    found = [table for table in original_tables(session.connection()) if table in COLLIDING]
    if found:
        raise PermanentError(
            f"{' and '.join(found)} are the original AICMO's tables, not aol-campaign-ops' "
            "(other columns); to take them over, run: aol db adopt"
        )
    _checked.add(engine)


def adopt_legacy(conn: Connection, report: AdoptionReport) -> None:
    """Move the original's campaign tables aside and copy campaigns (under their ids, which
    adopted actions name), tasks, metrics and the audit rows about campaigns."""
    found = original_tables(conn)
    if not found:
        return
    legacy = {table: move_aside(conn, table, report) for table in found}
    metadata.create_all(conn)
    campaigns = _copy_campaigns(conn, legacy.get("campaign_ops_campaigns"), report)
    task_campaigns = _copy_tasks(conn, legacy.get("campaign_ops_operator_tasks"), campaigns,
                                 report)
    _copy_metrics(conn, legacy.get("campaign_ops_metric_entries"), campaigns, report)
    _copy_audit(conn, legacy.get("campaign_ops_audit_log"), campaigns, task_campaigns, report)


def _rows(conn: Connection, table: Table | None) -> Sequence[Any]:
    return [] if table is None else conn.execute(select(table).order_by(table.c.id)).all()


def _copy_campaigns(conn: Connection, table: Table | None, report: AdoptionReport) -> set[int]:
    rows = [
        {"id": row.id, "name": row.name[:200],
         "status": CAMPAIGN_STATUSES.get(row.status, UNKNOWN_CAMPAIGN_STATUS).value,
         "created_at": as_utc(row.created_at) or utcnow()}
        for row in _rows(conn, table)
    ]
    insert_keeping_ids(conn, CAMPAIGNS, rows)
    if table is not None:
        report.copied_rows("campaigns", len(rows), "PLANNED as ACTIVE, COMPLETED as ENDED, "
                           "any other status as PAUSED; client, objective, platforms, dates "
                           "and CTA stay aside")
    return {row["id"] for row in rows}


def _copy_tasks(
    conn: Connection, table: Table | None, campaigns: set[int], report: AdoptionReport
) -> dict[int, int]:
    """Copy operator tasks of known campaigns; return ``{original task id: campaign id}``."""
    rows, owners = [], {}
    for row in _rows(conn, table):
        if row.campaign_id not in campaigns:
            continue
        owners[row.id] = row.campaign_id
        generated = row.task_type in GENERATED and row.platform == "internal"
        task_type = row.task_type if row.task_type in TASK_TYPES else UNKNOWN_TASK_TYPE
        status = row.status if row.status in TASK_STATUSES else UNKNOWN_TASK_STATUS
        details = {name: value for name, value in {
            "original_task_id": row.id, "platform": row.platform,
            "instructions": row.instructions_text, "copy_text": row.copy_text,
            "asset_ref": row.asset_ref, "blocked_reason": row.blocked_reason,
            "completion_proof": row.completion_proof_value,
            "original_task_type": None if task_type == row.task_type else row.task_type,
            "original_status": None if status == row.status else row.status,
        }.items() if value is not None}
        rows.append({
            "campaign_id": row.campaign_id, "task_type": task_type, "status": status,
            "title": row.title[:300], "due_at": None if generated else as_utc(row.due_at),
            "escalated_at": None, "created_at": as_utc(row.created_at) or utcnow(),
            "details": details,
        })
    if rows:
        conn.execute(insert(TASKS), rows)
    if table is not None:
        report.copied_rows("operator tasks", len(rows),
                           "generated REVIEW and ANALYZE tasks without a deadline; another "
                           "type as MANUAL, another status as BLOCKED")
    return owners


def _copy_metrics(
    conn: Connection, table: Table | None, campaigns: set[int], report: AdoptionReport
) -> None:
    """One entry per original row of a metric this plugin counts; others stay aside."""
    rows = [
        {"campaign_id": row.campaign_id, "platform": row.platform,
         "recorded_at": as_utc(row.date) or utcnow(),
         **{metric: round(row.metric_value) if metric == row.metric_name else 0
            for metric in METRICS}}
        for row in _rows(conn, table)
        if row.campaign_id in campaigns and row.metric_name in METRICS
    ]
    if rows:
        conn.execute(insert(METRIC_ENTRIES), rows)
    if table is not None:
        report.copied_rows("metric entries", len(rows), f"only {', '.join(METRICS)}")


def _copy_audit(
    conn: Connection, table: Table | None, campaigns: set[int],
    task_campaigns: Mapping[int, int], report: AdoptionReport,
) -> None:
    """Audit rows about a known campaign or task; the original's notes go into ``after``."""
    rows = []
    for row in _rows(conn, table):
        campaign = (row.entity_id if row.entity_type == "campaign"
                    else task_campaigns.get(row.entity_id) if row.entity_type == "task"
                    else None)
        if campaign not in campaigns:
            continue
        after = row.after_json if row.notes is None else {"after": row.after_json,
                                                          "notes": row.notes}
        rows.append({"campaign_id": campaign, "actor": row.actor[:255],
                     "action": row.action[:100], "before": row.before_json, "after": after,
                     "created_at": as_utc(row.created_at) or utcnow()})
    if rows:
        conn.execute(insert(AUDIT), rows)
    if table is not None:
        report.copied_rows("audit rows", len(rows), "about a known campaign or task")
