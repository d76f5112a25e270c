"""A small Python API for applications: campaigns, tasks, metrics and scheduled actions.

Every function works inside the caller's session and transaction and never commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aol_core import Enqueued, enqueue, require_aware, utcnow
from sqlalchemy.orm import Session

from aol_campaign_ops.models import (
    AuditEntry,
    CalendarItem,
    Campaign,
    CampaignStatus,
    ItemStatus,
    MetricEntry,
    Task,
    TaskStatus,
    TaskType,
)

CAMPAIGN_TICK = "CAMPAIGN_TICK"
ESCALATE_OVERDUE_TASKS = "ESCALATE_OVERDUE_TASKS"
WEEKLY_CAMPAIGN_SUMMARY = "WEEKLY_CAMPAIGN_SUMMARY"
TICK_ACTIVE_CAMPAIGNS = "TICK_ACTIVE_CAMPAIGNS"
SUMMARIZE_FINISHED_WEEKS = "SUMMARIZE_FINISHED_WEEKS"


#: what an owner address must look like: one @, no spaces (the mail server judges the rest)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class CampaignNotFound(LookupError):
    pass


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(f"no campaign with id {campaign_id}")
    return campaign


def create_campaign(
    session: Session,
    name: str,
    *,
    status: CampaignStatus | str = CampaignStatus.ACTIVE,
    owner_email: str | None = None,
    timezone: str = "UTC",
    starts_on: date | None = None,
    ends_on: date | None = None,
) -> Campaign:
    """A new campaign; ``ValueError`` names the first field that is wrong."""
    if not name.strip():
        raise ValueError("a campaign needs a name")
    if owner_email is not None and not EMAIL.fullmatch(owner_email):
        raise ValueError(f"owner e-mail {owner_email!r} is not an address like ops@example.com")
    zone(timezone)
    if starts_on is not None and ends_on is not None and ends_on < starts_on:
        raise ValueError(f"the campaign ends ({ends_on}) before it starts ({starts_on})")
    try:
        status = CampaignStatus(status).value
    except ValueError:
        raise ValueError(
            f"status {status!r} is not one of {', '.join(CampaignStatus)}"
        ) from None
    campaign = Campaign(
        name=name.strip(),
        status=status,
        created_at=utcnow(),
        owner_email=owner_email,
        timezone=timezone,
        starts_on=starts_on,
        ends_on=ends_on,
    )
    session.add(campaign)
    session.flush()
    return campaign


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ``ValueError`` saying so if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


def add_task(
    session: Session,
    campaign_id: int,
    title: str,
    *,
    task_type: TaskType | str = TaskType.MANUAL,
    due_at: datetime | None = None,
    status: TaskStatus | str = TaskStatus.PENDING,
    details: Mapping[str, Any] | None = None,
) -> Task:
    """Add an operator task; ``due_at`` must be timezone-aware (None: no deadline)."""
    get_campaign(session, campaign_id)
    task = Task(
        campaign_id=campaign_id,
        task_type=TaskType(task_type).value,
        status=TaskStatus(status).value,
        title=title,
        due_at=None if due_at is None else require_aware(due_at, "due_at"),
        created_at=utcnow(),
        details=dict(details or {}),
    )
    session.add(task)
    session.flush()
    return task


def add_calendar_item(
    session: Session,
    campaign_id: int,
    platform: str,
    content: str,
    publish_at: datetime,
    *,
    account: str | None = None,
    media: Sequence[str] = (),
    alt_texts: Sequence[str] = (),
) -> CalendarItem:
    """Schedule a post; ``publish_at`` must be timezone-aware. ``media`` are files or
    ``http(s)://`` URLs, ``alt_texts`` their descriptions in the same order. aol-social
    judges the post itself (platform, length, media) when the tick enqueues it: a post it
    refuses becomes a FAILED item and a REVIEW task, like a post the platform refuses."""
    get_campaign(session, campaign_id)
    if not platform.strip():
        raise ValueError("platform is empty")
    if not content.strip():
        raise ValueError("content is empty")
    if len(alt_texts) > len(media):
        raise ValueError(f"{len(alt_texts)} alt text(s) for {len(media)} media file(s)")
    item = CalendarItem(
        campaign_id=campaign_id,
        platform=platform.strip().lower(),
        account=account.strip() if account and account.strip() else None,
        content=content,
        media=[_media(source, alt) for source, alt in
               zip(media, [*alt_texts, *[""] * (len(media) - len(alt_texts))], strict=True)],
        publish_at=require_aware(publish_at, "publish_at"),
        status=ItemStatus.SCHEDULED.value,
        created_at=utcnow(),
    )
    session.add(item)
    session.flush()
    return item


def _media(source: str, alt: str) -> dict[str, str]:
    """A media entry as POST_SOCIAL takes it: a ``url`` or a ``path``, with its ``alt``."""
    source = source.strip()
    if not source:
        raise ValueError("a media entry is empty")
    kind = "url" if re.match(r"https?://", source) else "path"
    return {kind: source, "alt": alt.strip()}


def set_task_status(
    session: Session, task_id: int, status: TaskStatus | str, *, actor: str = "app"
) -> Task:
    """Change a task's status with an audit row. Reopening (PENDING or DUE) clears
    ``escalated_at``, so the task can be escalated again if it becomes overdue again."""
    task = session.get(Task, task_id)
    if task is None:
        raise LookupError(f"no task with id {task_id}")
    new = TaskStatus(status).value
    before = {"status": task.status}
    task.status = new
    if new in (TaskStatus.PENDING, TaskStatus.DUE):
        task.escalated_at = None
    audit(
        session,
        task.campaign_id,
        actor,
        "set_task_status",
        {"task_id": task.id, **before},
        {"task_id": task.id, "status": new},
    )
    return task


def record_metric(
    session: Session,
    campaign_id: int,
    platform: str,
    *,
    impressions: int = 0,
    engagement: int = 0,
    clicks: int = 0,
    recorded_at: datetime | None = None,
) -> MetricEntry:
    get_campaign(session, campaign_id)
    if min(impressions, engagement, clicks) < 0:
        raise ValueError("metric counts cannot be negative")
    entry = MetricEntry(
        campaign_id=campaign_id,
        platform=platform,
        recorded_at=utcnow() if recorded_at is None else require_aware(recorded_at, "recorded_at"),
        impressions=impressions,
        engagement=engagement,
        clicks=clicks,
    )
    session.add(entry)
    session.flush()
    return entry


def audit(
    session: Session, campaign_id: int, actor: str, action: str, before: Any, after: Any
) -> AuditEntry:
    entry = AuditEntry(
        campaign_id=campaign_id,
        actor=actor,
        action=action,
        before=before,
        after=after,
        created_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def schedule_daily_tick(session: Session, campaign_id: int, day: date) -> Enqueued:
    """Enqueue the campaign's tick for ``day`` (due at 00:00 UTC); one per campaign and day,
    however often this is called."""
    return enqueue(
        session,
        CAMPAIGN_TICK,
        {"campaign_id": campaign_id},
        idempotency_key=f"campaign-ops:tick:{campaign_id}:{day.isoformat()}",
        not_before=datetime.combine(day, time(), tzinfo=UTC),
    )


def schedule_weekly_summary(session: Session, campaign_id: int, week_start: date) -> Enqueued:
    """Enqueue the summary of the week starting ``week_start``, due when that week is over;
    one per campaign and week, however often this is called."""
    end = datetime.combine(week_start, time(), tzinfo=UTC) + timedelta(days=7)
    return enqueue(
        session,
        WEEKLY_CAMPAIGN_SUMMARY,
        {"campaign_id": campaign_id, "week_start": week_start.isoformat()},
        idempotency_key=summary_key(campaign_id, week_start),
        not_before=end,
    )


def summary_key(campaign_id: int, week_start: date) -> str:
    """The idempotency key of a campaign's summary of one week, whoever enqueues it."""
    return f"campaign-ops:summary:{campaign_id}:{week_start.isoformat()}"
