"""ESCALATE_OVERDUE_TASKS: hand a campaign's overdue tasks to a human in one REVIEW task.

The REVIEW task has no deadline, so it can never become overdue and escalate in turn. The
listed tasks are claimed with one conditional UPDATE (``escalated_at IS NULL``), so two
escalations running at once cannot both list the same task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from aol_core import ActionContext, utcnow
from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from aol_campaign_ops import mail
from aol_campaign_ops.api import audit, zone
from aol_campaign_ops.common import actor, iso, json_artifact, load_campaign
from aol_campaign_ops.models import Campaign, Task, TaskStatus, TaskType

#: the columns an escalation reads of each task
TaskRow = Row[int, str, datetime | None]


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
    seen = _listed(session.execute(select(*columns).where(waiting)).all(), now)
    settings = None if proof_mode else mail.smtp_settings()
    sender = mail.proof_sender() if settings is None else settings.sender
    message = _message(campaign, seen, context, sender) if seen else None
    mailed = None
    if message is not None and settings is not None:
        # Before the first write: SQLite's write lock is not held across the network call.
        mail.send(settings, message)
        mailed = {"to": message["To"], "message_id": message["Message-ID"]}
        context.log("INFO", f"escalation e-mailed to {message['To']} as "
                            f"{message['Message-ID']}")
    if proof_mode:
        listed = seen
    else:
        listed = _listed(session.execute(
            update(Task)
            .where(waiting & Task.id.in_([task["id"] for task in seen]))
            .values(escalated_at=now)
            .returning(*columns)
            .execution_options(synchronize_session=False)
        ).all(), now)
    review = _review_task(campaign, listed, context) if listed else None

    if proof_mode:
        eml = None if message is None else context.record_artifact(
            "escalation.eml", message.as_bytes(), "message/rfc822")
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
                "would_mail": None if message is None else message["To"],
                "note": "proof mode: nothing was written and nothing was sent",
            },
        )
        return {
            "campaign_id": campaign.id,
            "proof": True,
            "would_escalate": len(listed),
            "artifact": ref.uri,
            "sha256": ref.sha256,
            "eml": None if eml is None else eml.uri,
        }

    if review is None:
        context.log("INFO", f"campaign {campaign.id} has no overdue task awaiting escalation")
        return {"campaign_id": campaign.id, "review_task_id": None, "escalated_task_ids": [],
                "mailed": mailed}
    if mailed is None and listed:
        context.log("WARNING", _why_not_mailed(campaign, settings))
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
    return {"campaign_id": campaign.id, "review_task_id": review.id, "escalated_task_ids": ids,
            "mailed": mailed}


def _listed(rows: Sequence[TaskRow], now: datetime) -> list[dict[str, Any]]:
    return [
        {"id": r.id, "title": r.title, "due_at": iso(r.due_at)}
        for r in sorted(rows, key=lambda r: (r.due_at or now, r.id))
    ]


def _message(
    campaign: Campaign, listed: list[dict[str, Any]], context: ActionContext, sender: str
) -> EmailMessage | None:
    """The e-mail to the campaign's owner (None without one), times in the campaign's zone."""
    if campaign.owner_email is None:
        return None
    local = zone(campaign.timezone)
    lines = [
        f"- {task['title']} (due "
        f"{datetime.fromisoformat(task['due_at']).astimezone(local):%Y-%m-%d %H:%M %Z})"
        for task in listed
    ]
    text = "\n".join([
        f"{len(listed)} task(s) in campaign {campaign.name!r} are overdue and need a person:",
        "",
        *lines,
        "",
        f"They are listed in a REVIEW task: aol campaigns show {campaign.id}",
    ]) + "\n"
    return mail.compose(
        sender=sender, to=campaign.owner_email,
        subject=f"[{campaign.name}] {len(listed)} overdue task(s) need a person",
        text=text, message_id=mail.message_id("escalation", context.action_id, sender),
        date=utcnow(),
    )


def _why_not_mailed(campaign: Campaign, settings: mail.SmtpSettings | None) -> str:
    if campaign.owner_email is None:
        return f"campaign {campaign.id} has no owner e-mail: the escalation was not mailed"
    return f"{mail.URL_VARIABLE} is not set: the escalation was not mailed"


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
