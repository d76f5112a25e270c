"""What ``aol campaigns list`` and ``aol campaigns show`` display, as plain JSON-ready data,
and how an operator's typed times and days are read (in the campaign's zone)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aol_campaign_ops.api import get_campaign, zone
from aol_campaign_ops.models import CalendarItem, Campaign, ItemStatus, Task, TaskStatus

#: the statuses of work still waiting for a person
OPEN_TASKS = (TaskStatus.PENDING.value, TaskStatus.DUE.value, TaskStatus.OVERDUE.value,
              TaskStatus.BLOCKED.value)
#: calendar items still to go out: waiting for their time, or enqueued and not yet recorded
UPCOMING_ITEMS = (ItemStatus.SCHEDULED.value, ItemStatus.QUEUED.value)


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "owner_email": campaign.owner_email,
        "timezone": campaign.timezone,
        "starts_on": _day(campaign.starts_on),
        "ends_on": _day(campaign.ends_on),
    }


def list_campaigns(session: Session) -> list[dict[str, Any]]:
    return [campaign_summary(c) for c in session.scalars(select(Campaign).order_by(Campaign.id))]


def show_campaign(session: Session, campaign_id: int) -> dict[str, Any]:
    """The campaign, its upcoming calendar items (soonest first) and its open tasks (soonest
    deadline first, those without one last), times in the campaign's zone."""
    campaign = get_campaign(session, campaign_id)
    tasks = session.scalars(
        select(Task)
        .where(Task.campaign_id == campaign.id, Task.status.in_(OPEN_TASKS))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
    )
    items = session.scalars(
        select(CalendarItem)
        .where(CalendarItem.campaign_id == campaign.id, CalendarItem.status.in_(UPCOMING_ITEMS))
        .order_by(CalendarItem.publish_at, CalendarItem.id)
    )
    return {
        **campaign_summary(campaign),
        "upcoming_items": [item_view(item, campaign.timezone) for item in items],
        "open_tasks": [task_view(task, campaign.timezone) for task in tasks],
    }


def item_view(item: CalendarItem, timezone: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": item.status,
        "platform": item.platform,
        "account": item.account,
        "publish_at": _local(item.publish_at, timezone),
        "content": item.content,
        "media": list(item.media),
    }


def task_view(task: Task, timezone: str) -> dict[str, Any]:
    return {
        "id": task.id,
        "type": task.task_type,
        "status": task.status,
        "title": task.title,
        "due_at": None if task.due_at is None else _local(task.due_at, timezone),
    }


def _local(moment: datetime, timezone: str) -> str:
    return moment.astimezone(zone(timezone)).isoformat()


def parse_time(text: str, timezone: str, what: str) -> datetime:
    """ISO 8601; without an offset, a wall-clock time in the campaign's zone."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a time like 2030-01-08T10:00") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone(timezone))


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a day like 2030-01-31") from None


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
