"""The calendar's part of CAMPAIGN_TICK: publish each item whose time has come as a
POST_SOCIAL action, and record what became of the ones already published.

aol-social is another distribution that this plugin never imports: the two meet only in the
queue. A post goes out as a POST_SOCIAL action enqueued under a key derived from the item, so
every tick asks for the same action and it is enqueued exactly once; its outcome is read back
from that action (the core's ``Action`` row: its status, result and last error) by later
ticks, since the tick that enqueues it cannot wait for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aol_core import Action, InvalidPayload, Status, enqueue, utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

from aol_campaign_ops.models import CalendarItem, Campaign, ItemStatus, Task, TaskStatus, TaskType

#: aol-social's action type, named here so that nothing of aol-social is imported
POST_SOCIAL = "POST_SOCIAL"

#: items whose action may still change: QUEUED until it ends, HELD until a person resolves it
AWAITING = (ItemStatus.QUEUED.value, ItemStatus.HELD.value)

#: what each state of the POST_SOCIAL action means for the item (others: still on its way)
OUTCOMES = {
    Status.SUCCESS.value: ItemStatus.PUBLISHED,
    Status.FAILED.value: ItemStatus.FAILED,
    Status.DLQ.value: ItemStatus.FAILED,
    Status.CANCELLED.value: ItemStatus.FAILED,
    Status.HELD.value: ItemStatus.HELD,
}


def post_key(item: CalendarItem) -> str:
    """The idempotency key of the item's POST_SOCIAL action, whichever tick asks for it."""
    return f"campaign-ops:post:{item.campaign_id}:{item.id}"


def post_payload(item: CalendarItem) -> dict[str, Any]:
    """The item as POST_SOCIAL's payload."""
    payload: dict[str, Any] = {"social_platform": item.platform, "content": item.content}
    if item.account is not None:
        payload["account"] = item.account
    if item.media:
        payload["media"] = list(item.media)
    return payload


@dataclass
class CalendarChanges:
    """What one tick did to the calendar: items enqueued, and item statuses it changed."""

    enqueued: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    review_tasks: list[int] = field(default_factory=list)


def due_items(session: Session, campaign: Campaign, now: datetime) -> list[CalendarItem]:
    return list(session.scalars(
        select(CalendarItem)
        .where(CalendarItem.campaign_id == campaign.id,
               CalendarItem.status == ItemStatus.SCHEDULED.value,
               CalendarItem.publish_at <= now)
        .order_by(CalendarItem.publish_at, CalendarItem.id)
    ))


def awaiting_items(session: Session, campaign: Campaign) -> list[CalendarItem]:
    return list(session.scalars(
        select(CalendarItem)
        .where(CalendarItem.campaign_id == campaign.id, CalendarItem.status.in_(AWAITING))
        .order_by(CalendarItem.id)
    ))


def publish_calendar(session: Session, campaign: Campaign, now: datetime) -> CalendarChanges:
    """Record the outcomes of posts already enqueued, then enqueue the posts now due."""
    changes = CalendarChanges()
    for item in awaiting_items(session, campaign):
        _record_outcome(session, item, changes)
    for item in due_items(session, campaign, now):
        _enqueue_post(session, item, changes)
    return changes


def _enqueue_post(session: Session, item: CalendarItem, changes: CalendarChanges) -> None:
    """A post aol-social refuses at enqueue (a platform it does not know, content too long)
    fails the item alone, not the tick: the savepoint keeps the rest of the tick's work."""
    key = post_key(item)
    savepoint = session.begin_nested()
    try:
        queued = enqueue(session, POST_SOCIAL, post_payload(item), idempotency_key=key)
    except InvalidPayload as exc:
        savepoint.rollback()
        _settle(session, item, ItemStatus.FAILED, None, f"refused at enqueue: {exc}", changes)
        return
    savepoint.commit()
    _change(item, ItemStatus.QUEUED, changes)
    item.post_action_id = queued.id
    changes.enqueued.append({"item_id": item.id, "action_id": queued.id,
                             "idempotency_key": key, "created": queued.created})


def _record_outcome(session: Session, item: CalendarItem, changes: CalendarChanges) -> None:
    action = session.scalar(select(Action).where(Action.idempotency_key == post_key(item)))
    if action is None:
        _settle(session, item, ItemStatus.FAILED, None,
                f"its POST_SOCIAL action (key {post_key(item)}) is gone from the queue", changes)
        return
    outcome = OUTCOMES.get(action.status)
    if outcome is None or outcome.value == item.status:
        return
    result = action.result if isinstance(action.result, dict) else {}
    url = result.get("url") if outcome is ItemStatus.PUBLISHED else None
    reason = None if outcome is ItemStatus.PUBLISHED else (
        action.last_error or f"POST_SOCIAL action {action.id} is {action.status}")
    _settle(session, item, outcome, url, reason, changes)


def _settle(session: Session, item: CalendarItem, outcome: ItemStatus, url: Any,
            reason: str | None, changes: CalendarChanges) -> None:
    """Record the outcome on the item; a post that failed or is held becomes a REVIEW task
    (one per item, whatever happens to it afterwards)."""
    _change(item, outcome, changes)
    item.remote_url = str(url) if url else None
    item.outcome = reason
    if outcome is ItemStatus.PUBLISHED:
        return
    source_key = f"campaign-ops:post-review:{item.id}"
    if session.scalar(select(Task.id).where(Task.source_key == source_key)) is not None:
        return
    verb = "failed" if outcome is ItemStatus.FAILED else "is held"
    task = Task(
        campaign_id=item.campaign_id,
        task_type=TaskType.REVIEW.value,
        status=TaskStatus.PENDING.value,
        title=f"The {item.platform} post of {item.publish_at.isoformat()} {verb}: "
              f"{reason}"[:300],
        due_at=None,
        created_at=utcnow(),
        details={"kind": "calendar_post", "item_id": item.id, "status": outcome.value,
                 "post_action_id": item.post_action_id, "reason": reason},
        source_key=source_key,
    )
    session.add(task)
    session.flush()
    changes.review_tasks.append(task.id)


def _change(item: CalendarItem, status: ItemStatus, changes: CalendarChanges) -> None:
    changes.before.setdefault(str(item.id), item.status)
    changes.after[str(item.id)] = status.value
    item.status = status.value
