"""CAMPAIGN_TICK: move tasks to DUE and OVERDUE, ask for an escalation of overdue ones, and
publish the calendar's items whose time has come (:mod:`aol_campaign_ops.posts`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aol_core import ActionContext, enqueue, utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

from aol_campaign_ops.api import ESCALATE_OVERDUE_TASKS, audit
from aol_campaign_ops.common import actor, escalation_key, iso, json_artifact, load_campaign
from aol_campaign_ops.models import Task, TaskStatus
from aol_campaign_ops.posts import due_items, post_key, post_payload, publish_calendar

#: a PENDING task due within this becomes DUE
DUE_WINDOW = timedelta(hours=1)

OPEN = (TaskStatus.PENDING.value, TaskStatus.DUE.value)


def campaign_tick(
    session: Session, payload: Mapping[str, Any], proof_mode: bool, context: ActionContext
) -> dict[str, Any]:
    campaign = load_campaign(session, payload)
    now = utcnow()
    candidates = session.scalars(
        select(Task)
        .where(
            Task.campaign_id == campaign.id,
            Task.status.in_(OPEN),
            Task.due_at.is_not(None),
            Task.due_at <= now + DUE_WINDOW,
        )
        .order_by(Task.id)
    ).all()
    # Tasks without a deadline (escalation REVIEW tasks among them) are never selected.
    overdue = [t for t in candidates if t.due_at is not None and t.due_at < now]
    due = [t for t in candidates if t not in overdue and t.status == TaskStatus.PENDING]
    already = session.execute(
        select(Task.id, Task.due_at).where(
            Task.campaign_id == campaign.id,
            Task.status == TaskStatus.OVERDUE,
            Task.escalated_at.is_(None),
        )
    ).all()
    waiting = sorted(
        {(row.id, row.due_at) for row in already}
        | {(t.id, t.due_at) for t in overdue if t.escalated_at is None},
        key=lambda pair: pair[0],
    )
    key = escalation_key(campaign.id, waiting) if waiting else None
    counts = {
        "campaign_id": campaign.id,
        "marked_overdue": len(overdue),
        "marked_due": len(due),
        "awaiting_escalation": len(waiting),
    }

    if proof_mode:
        ref = json_artifact(
            context,
            "tick.json",
            {
                "campaign_id": campaign.id,
                "checked_at": iso(now),
                "would_mark_overdue": [_brief(t) for t in overdue],
                "would_mark_due": [_brief(t) for t in due],
                "would_enqueue_escalation": None
                if key is None
                else {
                    "action_type": ESCALATE_OVERDUE_TASKS,
                    "idempotency_key": key,
                    "task_ids": [task_id for task_id, _ in waiting],
                },
                "would_enqueue_posts": [
                    {"item_id": item.id, "action_type": "POST_SOCIAL",
                     "idempotency_key": post_key(item), "payload": post_payload(item)}
                    for item in due_items(session, campaign, now)
                ],
                "note": "proof mode: nothing was written and nothing was enqueued",
            },
        )
        return {**counts, "proof": True, "artifact": ref.uri, "sha256": ref.sha256}

    changes = {str(t.id): t.status for t in overdue + due}
    for task in overdue:
        task.status = TaskStatus.OVERDUE.value
    for task in due:
        task.status = TaskStatus.DUE.value
    if changes:
        audit(
            session,
            campaign.id,
            actor(context),
            "campaign_tick",
            changes,
            {str(t.id): t.status for t in overdue + due},
        )
    escalation = None
    if key is not None:
        queued = enqueue(
            session, ESCALATE_OVERDUE_TASKS, {"campaign_id": campaign.id}, idempotency_key=key
        )
        escalation = {"action_id": queued.id, "idempotency_key": key, "created": queued.created}
        context.log(
            "INFO",
            f"escalation of {len(waiting)} overdue task(s) "
            f"{'enqueued' if queued.created else 'already enqueued'} "
            f"as action {queued.id}",
        )
    posts = publish_calendar(session, campaign, now)
    if posts.after:
        audit(session, campaign.id, actor(context), "calendar_posts", posts.before, posts.after)
    for queued_post in posts.enqueued:
        context.log("INFO", f"calendar item {queued_post['item_id']} "
                            f"{'enqueued' if queued_post['created'] else 'already enqueued'} "
                            f"as POST_SOCIAL action {queued_post['action_id']}")
    return {**counts, "escalation": escalation,
            "calendar": {"enqueued": posts.enqueued, "statuses": posts.after,
                         "review_tasks": posts.review_tasks}}


def _brief(task: Task) -> dict[str, Any]:
    return {"id": task.id, "title": task.title, "status": task.status, "due_at": iso(task.due_at)}
