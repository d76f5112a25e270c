"""The plugin's schedules: the core ticks them, so no cron job has to call anything.

Schedules are declared once for the whole plugin, while campaigns come and go and each has
its own time zone; so each schedule runs a small fan-out action that looks at the campaigns
at its slot and enqueues the per-campaign work, under idempotency keys derived from the
campaign and the period, never from the clock:

* ``campaign-ops-tick`` (every ``AOL_CAMPAIGN_TICK_MINUTES``, default 15) runs
  ``TICK_ACTIVE_CAMPAIGNS``: a ``CAMPAIGN_TICK`` for each ACTIVE campaign not past its end.
* ``campaign-ops-weekly-summaries`` (every quarter hour, so every zone's 09:00 is a slot,
  Kathmandu's too) runs ``SUMMARIZE_FINISHED_WEEKS``: once Monday 09:00 has come in a
  campaign's zone, the ``WEEKLY_CAMPAIGN_SUMMARY`` of the week that ended then. The key is
  the campaign and the week, so every later slot of that week finds it enqueued already, and
  a week whose Monday fell while all workers were down is still summarized when they return.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aol_core import ActionContext, PermanentError, Schedule, enqueue
from sqlalchemy import select
from sqlalchemy.orm import Session

from aol_campaign_ops.api import (
    CAMPAIGN_TICK,
    SUMMARIZE_FINISHED_WEEKS,
    TICK_ACTIVE_CAMPAIGNS,
    WEEKLY_CAMPAIGN_SUMMARY,
    summary_key,
    zone,
)
from aol_campaign_ops.common import json_artifact
from aol_campaign_ops.models import Campaign, CampaignStatus

TICK_SCHEDULE = "campaign-ops-tick"
SUMMARY_SCHEDULE = "campaign-ops-weekly-summaries"
TICK_MINUTES_VARIABLE = "AOL_CAMPAIGN_TICK_MINUTES"
DEFAULT_TICK_MINUTES = 15
#: the weekly summary falls due on Monday at this time, in the campaign's zone
SUMMARY_TIME = time(9, 0)


def declared_schedules(environ: Mapping[str, str] | None = None) -> list[Schedule]:
    """The two schedules; a bad ``AOL_CAMPAIGN_TICK_MINUTES`` raises ``ValueError`` naming
    it, which marks the plugin broken with that reason (``aol plugins`` shows it)."""
    minutes = tick_minutes(os.environ if environ is None else environ)
    slot = {"slot": "{slot}"}
    return [
        Schedule(TICK_SCHEDULE, TICK_ACTIVE_CAMPAIGNS, every=timedelta(minutes=minutes),
                 payload=slot),
        Schedule(SUMMARY_SCHEDULE, SUMMARIZE_FINISHED_WEEKS, cron="*/15 * * * *",
                 payload=slot),
    ]


def tick_minutes(environ: Mapping[str, str]) -> int:
    text = environ.get(TICK_MINUTES_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TICK_MINUTES
    if not text.isdigit() or not 1 <= int(text) <= 24 * 60:
        raise ValueError(f"{TICK_MINUTES_VARIABLE}={text!r}: give whole minutes from 1 to 1440")
    return int(text)


def tick_active_campaigns(
    session: Session, payload: Mapping[str, Any], proof_mode: bool, context: ActionContext
) -> dict[str, Any]:
    slot = _slot(payload)
    campaigns = [
        campaign
        for campaign in _campaigns(session, CampaignStatus.ACTIVE)
        if campaign.ends_on is None or _local_day(slot, campaign) <= campaign.ends_on
    ]
    wanted = [
        (campaign.id, f"campaign-ops:tick:{campaign.id}:{slot.isoformat()}")
        for campaign in campaigns
    ]
    return _enqueue_all(session, context, proof_mode, "ticks.json", slot, [
        (CAMPAIGN_TICK, {"campaign_id": campaign_id}, key) for campaign_id, key in wanted
    ])


def summarize_finished_weeks(
    session: Session, payload: Mapping[str, Any], proof_mode: bool, context: ActionContext
) -> dict[str, Any]:
    slot = _slot(payload)
    wanted = []
    for campaign in _campaigns(session, CampaignStatus.ACTIVE, CampaignStatus.ENDED):
        week_start = finished_week(slot, campaign.timezone)
        if summarized(campaign, week_start):
            wanted.append((
                WEEKLY_CAMPAIGN_SUMMARY,
                {"campaign_id": campaign.id, "week_start": week_start.isoformat()},
                summary_key(campaign.id, week_start),
            ))
    return _enqueue_all(session, context, proof_mode, "summaries.json", slot, wanted)


def finished_week(slot: datetime, timezone: str) -> date:
    """The first day (a Monday) of the last week whose report has fallen due at ``slot``:
    the week before the latest Monday 09:00 in ``timezone`` not after ``slot``."""
    local = slot.astimezone(zone(timezone))
    monday = local.date() - timedelta(days=local.weekday())
    if local.time() < SUMMARY_TIME and local.weekday() == 0:
        monday -= timedelta(days=7)
    return monday - timedelta(days=7)


def summarized(campaign: Campaign, week_start: date) -> bool:
    """Whether the campaign gets a report of this week: it overlaps the campaign's dates, and
    the campaign is ACTIVE, or ENDED with its end date in that week (its final report)."""
    week_end = week_start + timedelta(days=6)
    if campaign.starts_on is not None and campaign.starts_on > week_end:
        return False
    if campaign.ends_on is not None and campaign.ends_on < week_start:
        return False
    if campaign.status == CampaignStatus.ENDED:
        return campaign.ends_on is not None and week_start <= campaign.ends_on <= week_end
    return True


def _enqueue_all(
    session: Session,
    context: ActionContext,
    proof_mode: bool,
    artifact: str,
    slot: datetime,
    wanted: list[tuple[str, dict[str, Any], str]],
) -> dict[str, Any]:
    """Enqueue each ``(type, payload, key)``; in proof mode, record them instead."""
    listed = [{"action_type": t, "payload": p, "idempotency_key": k} for t, p, k in wanted]
    if proof_mode:
        ref = json_artifact(context, artifact, {
            "slot": slot.isoformat(),
            "would_enqueue": listed,
            "note": "proof mode: nothing was enqueued",
        })
        return {"slot": slot.isoformat(), "proof": True, "would_enqueue": len(listed),
                "artifact": ref.uri}
    created = 0
    for action_type, payload, key in wanted:
        created += enqueue(session, action_type, payload, idempotency_key=key).created
    context.log("INFO", f"{created} new of {len(wanted)} action(s) for slot {slot.isoformat()}")
    return {"slot": slot.isoformat(), "enqueued": created,
            "already_enqueued": len(wanted) - created}


def _campaigns(session: Session, *statuses: CampaignStatus) -> list[Campaign]:
    return list(session.scalars(
        select(Campaign).where(Campaign.status.in_([s.value for s in statuses]))
        .order_by(Campaign.id)
    ))


def _local_day(slot: datetime, campaign: Campaign) -> date:
    return slot.astimezone(zone(campaign.timezone)).date()


def _slot(payload: Mapping[str, Any]) -> datetime:
    try:
        slot = datetime.fromisoformat(str(payload["slot"]))
    except ValueError:
        raise PermanentError(f"slot {payload['slot']!r} is not an ISO 8601 time") from None
    if slot.tzinfo is None:
        raise PermanentError(f"slot {payload['slot']!r} has no UTC offset")
    return slot.astimezone(UTC)
