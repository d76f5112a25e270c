"""WEEKLY_CAMPAIGN_SUMMARY: a week's task counts and metrics, kept once per campaign and week."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from aol_core import ActionContext, PermanentError, utcnow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aol_campaign_ops import mail, report
from aol_campaign_ops.api import audit, zone
from aol_campaign_ops.common import actor, json_artifact, load_campaign
from aol_campaign_ops.models import (
    AuditEntry,
    CalendarItem,
    Campaign,
    ItemStatus,
    MetricEntry,
    Task,
    TaskStatus,
    TaskType,
)

COMPLETED = (TaskStatus.DONE.value,)
OVERDUE = (TaskStatus.OVERDUE.value, TaskStatus.MISSED.value)


def weekly_summary(
    session: Session, payload: Mapping[str, Any], proof_mode: bool, context: ActionContext
) -> dict[str, Any]:
    """Decide from reads alone whether the week's report is new, changed or unchanged; render
    it; mail a new or changed one to the owner before the first write; then write."""
    campaign = load_campaign(session, payload)
    week_start = _parse_day(str(payload["week_start"]))
    summary = summarize(session, campaign, week_start)
    key = f"weekly-summary:{campaign.id}:{week_start.isoformat()}"
    existing = session.scalar(select(Task).where(Task.source_key == key))
    previous = None if existing is None else session.get(
        AuditEntry, existing.details.get("audit_id"))
    unchanged = previous is not None and previous.after == summary
    reports = _record_reports(campaign, summary, context)

    if proof_mode:
        ref = json_artifact(
            context,
            "weekly-summary.json",
            {
                "summary": summary,
                "would_create_analyze_task": existing is None,
                "note": "proof mode: nothing was written and nothing was sent",
            },
        )
        return {**summary, "proof": True, "artifact": ref.uri, "sha256": ref.sha256,
                "reports": reports}

    mailed = None if unchanged else _mail_report(campaign, summary, context)
    outcome = {"reports": reports, "mailed": mailed}
    if existing is not None and previous is not None and unchanged:
        return {
            **summary,
            "audit_id": previous.id,
            "analyze_task_id": existing.id,
            "created": False,
            "updated": False,
            **outcome,
        }
    if existing is not None:
        entry = audit(
            session,
            campaign.id,
            actor(context),
            "weekly_summary_updated",
            None if previous is None else previous.after,
            summary,
        )
        existing.details = {
            **existing.details,
            "audit_id": entry.id,
            "top_platform": summary["top_platform"],
        }
        return {
            **summary,
            "audit_id": entry.id,
            "analyze_task_id": existing.id,
            "created": False,
            "updated": True,
            **outcome,
        }

    entry = audit(session, campaign.id, actor(context), "weekly_summary", None, summary)
    task = Task(
        campaign_id=campaign.id,
        task_type=TaskType.ANALYZE.value,
        status=TaskStatus.PENDING.value,
        title=f"Analyze the week of {week_start.isoformat()} in campaign {campaign.name!r}"[:300],
        due_at=None,
        created_at=utcnow(),
        details={
            "kind": "weekly_summary",
            "week_start": week_start.isoformat(),
            "audit_id": entry.id,
            "top_platform": summary["top_platform"],
        },
        source_key=key,
    )
    session.add(task)
    session.flush()
    return {
        **summary,
        "audit_id": entry.id,
        "analyze_task_id": task.id,
        "created": True,
        "updated": False,
        **outcome,
    }


def _record_reports(
    campaign: Campaign, summary: dict[str, Any], context: ActionContext
) -> dict[str, str]:
    """The HTML and Markdown reports as the action's artifacts (``aol actions artifact``)."""
    html = context.record_artifact(
        "report.html", report.html(campaign.name, campaign.timezone, summary), "text/html")
    text = context.record_artifact(
        "report.md", report.markdown(campaign.name, campaign.timezone, summary),
        "text/markdown")
    return {"html": html.uri, "markdown": text.uri}


def _mail_report(
    campaign: Campaign, summary: dict[str, Any], context: ActionContext
) -> dict[str, str] | None:
    """E-mail the report to the owner (HTML, with the Markdown as the plain-text part)."""
    settings = mail.smtp_settings()
    if campaign.owner_email is None or settings is None:
        return None
    message = mail.compose(
        sender=settings.sender, to=campaign.owner_email,
        subject=f"Weekly report: {report.title(campaign.name, summary)}",
        text=report.markdown(campaign.name, campaign.timezone, summary),
        html=report.html(campaign.name, campaign.timezone, summary),
        message_id=mail.message_id("weekly-report", context.action_id, settings.sender),
        date=utcnow(),
    )
    mail.send(settings, message)
    context.log("INFO", f"weekly report e-mailed to {campaign.owner_email} as "
                        f"{message['Message-ID']}")
    return {"to": campaign.owner_email, "message_id": str(message["Message-ID"])}


def summarize(session: Session, campaign: Campaign, week_start: date) -> dict[str, Any]:
    """Tasks due in [week_start, week_start + 7 days), calendar posts published for then and
    metrics recorded then, the days reckoned in the campaign's time zone (a week around a DST
    change is 167 or 169 hours)."""
    local = zone(campaign.timezone)
    start = datetime.combine(week_start, time(), tzinfo=local)
    end = datetime.combine(week_start + timedelta(days=7), time(), tzinfo=local)
    by_status: dict[str, int] = {
        status: count
        for status, count in session.execute(
            select(Task.status, func.count())
            .where(Task.campaign_id == campaign.id, Task.due_at >= start, Task.due_at < end)
            .group_by(Task.status)
        )
    }
    metrics = {
        row.platform: {
            "entries": int(row.entries),
            "impressions": int(row.impressions),
            "engagement": int(row.engagement),
            "clicks": int(row.clicks),
        }
        for row in session.execute(
            select(
                MetricEntry.platform,
                func.count().label("entries"),
                func.sum(MetricEntry.impressions).label("impressions"),
                func.sum(MetricEntry.engagement).label("engagement"),
                func.sum(MetricEntry.clicks).label("clicks"),
            )
            .where(
                MetricEntry.campaign_id == campaign.id,
                MetricEntry.recorded_at >= start,
                MetricEntry.recorded_at < end,
            )
            .group_by(MetricEntry.platform)
            .order_by(MetricEntry.platform)
        )
    }
    published = [
        {"item_id": item.id, "platform": item.platform, "account": item.account,
         "publish_at": item.publish_at.astimezone(local).isoformat(),
         "content": item.content, "url": item.remote_url}
        for item in session.scalars(
            select(CalendarItem)
            .where(CalendarItem.campaign_id == campaign.id,
                   CalendarItem.status == ItemStatus.PUBLISHED.value,
                   CalendarItem.publish_at >= start, CalendarItem.publish_at < end)
            .order_by(CalendarItem.publish_at, CalendarItem.id)
        )
    ]
    ranked = sorted(metrics, key=lambda p: (-(metrics[p]["engagement"] + metrics[p]["clicks"]), p))
    return {
        "campaign_id": campaign.id,
        "week_start": week_start.isoformat(),
        "week_end": (week_start + timedelta(days=7)).isoformat(),
        "tasks": {
            "planned": sum(by_status.values()),
            "completed": sum(n for s, n in by_status.items() if s in COMPLETED),
            "overdue": sum(n for s, n in by_status.items() if s in OVERDUE),
        },
        "posts_published": published,
        "metrics": metrics,
        "top_platform": ranked[0] if ranked else None,
    }


def _parse_day(text: str) -> date:
    """``YYYY-MM-DD``, or the original's midnight UTC datetime (the schema allows no other)."""
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise PermanentError(f"week_start {text!r} is not a date (YYYY-MM-DD)") from None
