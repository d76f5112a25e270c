"""Rows and actions for ``aol demo``: one campaign with work in every state."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from aol_core import utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

from aol_campaign_ops.api import (
    CAMPAIGN_TICK,
    ESCALATE_OVERDUE_TASKS,
    SUMMARIZE_FINISHED_WEEKS,
    TICK_ACTIVE_CAMPAIGNS,
    WEEKLY_CAMPAIGN_SUMMARY,
    add_calendar_item,
    add_task,
    create_campaign,
    record_metric,
)
from aol_campaign_ops.models import Campaign, ItemStatus, TaskStatus, TaskType

DEMO_CAMPAIGN = "AOL demo: spring launch"
DEMO_OWNER = "owner@example.com"


def example_actions(session: Session) -> list[tuple[str, Mapping[str, Any]]]:
    """A tick of the demo campaign (with a calendar post due, whose POST_SOCIAL action its
    ``tick.json`` shows), an escalation of what is overdue already, the summary of
    last week, and the two fan-outs the schedules run (the campaign is created on first
    use)."""
    now = utcnow()
    last_week = (now - timedelta(days=now.weekday() + 7)).date()
    campaign = session.scalar(select(Campaign).where(Campaign.name == DEMO_CAMPAIGN))
    if campaign is None:
        # an owner, so the proof-mode escalation records the e-mail it would send
        campaign = create_campaign(session, DEMO_CAMPAIGN, owner_email=DEMO_OWNER)
        _fill(session, campaign.id, now, datetime.combine(last_week, time(), tzinfo=UTC))
    # the minute the demo campaign was made: the same slot each time the examples are asked
    slot = campaign.created_at.replace(second=0, microsecond=0).isoformat()
    return [
        (CAMPAIGN_TICK, {"campaign_id": campaign.id}),
        (ESCALATE_OVERDUE_TASKS, {"campaign_id": campaign.id}),
        (
            WEEKLY_CAMPAIGN_SUMMARY,
            {"campaign_id": campaign.id, "week_start": last_week.isoformat()},
        ),
        (TICK_ACTIVE_CAMPAIGNS, {"slot": slot}),
        (SUMMARIZE_FINISHED_WEEKS, {"slot": slot}),
    ]


def _fill(session: Session, campaign_id: int, now: datetime, week: datetime) -> None:
    hours = timedelta(hours=1)
    for title, kind, due, status in [
        ("Post the launch teaser", TaskType.POST, now - 3 * hours, TaskStatus.OVERDUE),
        ("Answer launch comments", TaskType.ENGAGE, now - hours / 2, TaskStatus.DUE),
        (
            "Follow up with the partner agency",
            TaskType.FOLLOW_UP,
            now + hours / 2,
            TaskStatus.PENDING,
        ),
        ("Publish the case study", TaskType.POST, now + 48 * hours, TaskStatus.PENDING),
        ("Announce the webinar", TaskType.POST, week + 26 * hours, TaskStatus.DONE),
        ("Thank webinar attendees", TaskType.ENGAGE, week + 74 * hours, TaskStatus.MISSED),
        ("Draft the newsletter", TaskType.MANUAL, week + 98 * hours, TaskStatus.DONE),
    ]:
        add_task(session, campaign_id, title, task_type=kind, due_at=due, status=status)
    add_calendar_item(session, campaign_id, "mastodon", "The spring collection is out today!",
                      now - hours / 6, media=["https://example.com/spring.png"],
                      alt_texts=["The spring collection on a rack"])
    add_calendar_item(session, campaign_id, "bluesky", "Join the launch webinar on Thursday.",
                      now + 48 * hours)
    # what a tick records once a post went out: last week's report lists it with its link
    webinar = add_calendar_item(session, campaign_id, "mastodon",
                                "The webinar starts in an hour.", week + 25 * hours)
    webinar.status = ItemStatus.PUBLISHED.value
    webinar.remote_url = "https://mastodon.example/@demo/1"
    for day, platform, impressions, engagement, clicks in [
        (0, "twitter", 1200, 85, 40),
        (2, "linkedin", 900, 60, 75),
        (3, "twitter", 1500, 110, 52),
        (5, "instagram", 2100, 190, 12),
    ]:
        record_metric(
            session,
            campaign_id,
            platform,
            impressions=impressions,
            engagement=engagement,
            clicks=clicks,
            recorded_at=week + timedelta(days=day, hours=10),
        )
