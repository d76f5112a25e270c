"""Helpers for tests of aol-campaign-ops (its own, and applications' built on it), used with
``aol_core.testing.ActionHarness``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aol_core import Action, utcnow
from aol_core.testing import ActionHarness
from sqlalchemy import select

from aol_campaign_ops import AuditEntry, MetricEntry, Task, add_task, create_campaign


def new_campaign(harness: ActionHarness, name: str = "Spring launch") -> int:
    with harness.session() as session:
        return create_campaign(session, name).id


def new_task(
    harness: ActionHarness,
    campaign_id: int,
    title: str,
    *,
    due_in: timedelta | None = None,
    due_at: datetime | None = None,
    status: str = "PENDING",
    task_type: str = "POST",
) -> int:
    if due_in is not None:
        due_at = utcnow() + due_in
    with harness.session() as session:
        return add_task(
            session, campaign_id, title, task_type=task_type, due_at=due_at, status=status
        ).id


def tasks(harness: ActionHarness, campaign_id: int) -> list[Task]:
    with harness.sessions() as session:
        return list(
            session.scalars(select(Task).where(Task.campaign_id == campaign_id).order_by(Task.id))
        )


def task(harness: ActionHarness, task_id: int) -> Task:
    with harness.sessions() as session:
        found = session.get(Task, task_id)
        assert found is not None
        return found


def metrics(harness: ActionHarness, campaign_id: int) -> list[MetricEntry]:
    with harness.sessions() as session:
        return list(session.scalars(
            select(MetricEntry).where(MetricEntry.campaign_id == campaign_id)
            .order_by(MetricEntry.id)
        ))


def audit_rows(harness: ActionHarness, campaign_id: int) -> list[AuditEntry]:
    with harness.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry)
                .where(AuditEntry.campaign_id == campaign_id)
                .order_by(AuditEntry.id)
            )
        )


def actions_of(harness: ActionHarness, action_type: str) -> list[Action]:
    with harness.sessions() as session:
        return list(
            session.scalars(
                select(Action).where(Action.action_type == action_type).order_by(Action.id)
            )
        )


def snapshot(harness: ActionHarness, campaign_id: int) -> list[tuple[Any, ...]]:
    """Every column of the campaign's tasks and audit rows, to show nothing changed."""
    return [
        (t.id, t.task_type, t.status, t.title, t.due_at, t.escalated_at, t.details)
        for t in tasks(harness, campaign_id)
    ] + [(a.id, a.action, a.before, a.after) for a in audit_rows(harness, campaign_id)]


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON column's value (an action's result, an audit row's before/after) as a dict."""
    assert isinstance(value, dict), value
    return value
