"""Helpers the handlers share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aol_core import ActionContext, ArtifactRef, PermanentError
from sqlalchemy.orm import Session

from aol_campaign_ops.api import CampaignNotFound, get_campaign
from aol_campaign_ops.legacy import refuse_original_tables
from aol_campaign_ops.models import Campaign

#: longest id list kept readable in an escalation key (the digest covers them all anyway)
MAX_KEY_IDS = 150


def load_campaign(session: Session, payload: Mapping[str, Any]) -> Campaign:
    refuse_original_tables(session)
    try:
        return get_campaign(session, int(payload["campaign_id"]))
    except CampaignNotFound as exc:
        raise PermanentError(str(exc)) from None


def actor(context: ActionContext) -> str:
    return f"aol:{context.action_type}#{context.action_id}"


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def escalation_key(campaign_id: int, tasks: Iterable[tuple[int, datetime | None]]) -> str:
    """The idempotency key of the escalation of these overdue tasks.

    Derived from the campaign, the sorted task ids and their deadlines, never from the
    clock: every tick that sees the same overdue tasks asks for the same escalation, while
    a task rescheduled and overdue again gets a new one.
    """
    ordered = sorted(tasks, key=lambda t: t[0])
    ids = ",".join(str(task_id) for task_id, _ in ordered)
    digest = hashlib.sha256(
        ";".join(f"{task_id}@{iso(due)}" for task_id, due in ordered).encode()
    ).hexdigest()[:16]
    if len(ids) > MAX_KEY_IDS:
        ids = f"{len(ordered)}-tasks"
    return f"campaign-ops:escalate:{campaign_id}:{ids}:{digest}"


def json_artifact(context: ActionContext, name: str, data: Any) -> ArtifactRef:
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return context.record_artifact(name, text, "application/json")
