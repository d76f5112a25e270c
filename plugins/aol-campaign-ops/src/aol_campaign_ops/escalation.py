"""ESCALATE_OVERDUE_TASKS: hand a campaign's overdue tasks to a human in one REVIEW task.

The REVIEW task has no deadline, so it can never become overdue and escalate in turn. The
listed tasks are claimed with one conditional UPDATE (``escalated_at IS NULL``), so two
escalations running at once cannot both list the same task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aol_core import ActionContext, utcnow
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aol_campaign_ops.api import audit
from aol_campaign_ops.common import actor, iso, json_artifact, load_campaign
from aol_campaign_ops.models import Campaign, Task, TaskStatus, TaskType


def escalate_overdue_tasks(
    session: Session, payload: Mapping[str, Any], proof_mode: bool, context: ActionContext
) -> dict[str, Any]:
    campaign = load_campaign(session, payload)
    now = utcnow()
    waiting = (
        (Task.campaign_id == campaign.id)
        & (Task.status == TaskStatus.OVERDUE.value)
        & Task.escalated_at.is_(None)
    )
    columns = (Task.id, Task.title, Task.due_at)
    if proof_mode:
        rows = session.execute(select(*columns).where(waiting)).all()
    else:
        rows = session.execute(
            update(Task)
            .where(waiting)
            .values(escalated_at=now)
            .returning(*columns)
            .execution_options(synchronize_session=False)
        ).all()
    listed = [
        {"id": r.id, "title": r.title, "due_at": iso(r.due_at)}
        for r in sorted(rows, key=lambda r: (r.due_at or now, r.id))
    ]
    review = _review_task(campaign, listed, context) if listed else None

    if proof_mode:
        ref = json_artifact(
            context,
            "review-task.json",
            {
                "campaign_id": campaign.id,
                "would_create": None
                if review is None
                else {
                    "task_type": review.task_type,
                    "status": review.status,
                    "title": review.title,
                    "due_at": None,
                    "details": review.details,
                },
                "would_mark_escalated": [task["id"] for task in listed],
                "note": "proof mode: nothing was written",
            },
        )
        return {
            "campaign_id": campaign.id,
            "proof": True,
            "would_escalate": len(listed),
            "artifact": ref.uri,
            "sha256": ref.sha256,
        }

    if review is None:
        context.log("INFO", f"campaign {campaign.id} has no overdue task awaiting escalation")
        return {"campaign_id": campaign.id, "review_task_id": None, "escalated_task_ids": []}
    session.add(review)
    session.flush()
    ids = [task["id"] for task in listed]
    audit(
        session,
        campaign.id,
        actor(context),
        "escalate_overdue_tasks",
        {"task_ids": ids, "escalated_at": None},
        {"task_ids": ids, "escalated_at": iso(now), "review_task_id": review.id},
    )
    return {"campaign_id": campaign.id, "review_task_id": review.id, "escalated_task_ids": ids}


def _review_task(campaign: Campaign, listed: list[dict[str, Any]], context: ActionContext) -> Task:
    lines = "; ".join(f"{t['title']} (due {t['due_at']})" for t in listed)
    return Task(
        campaign_id=campaign.id,
        task_type=TaskType.REVIEW.value,
        status=TaskStatus.PENDING.value,
        title=f"Review {len(listed)} overdue task(s) in campaign {campaign.name!r}: {lines}"[:300],
        due_at=None,
        created_at=utcnow(),
        details={
            "kind": "escalation",
            "overdue_tasks": listed,
            "escalation_action_id": context.action_id,
        },
    )
