"""What the dashboard of ``aol serve`` shows, as plain data (the pages render it as HTML
or JSON, see :mod:`aol_core.dashboard_web`).

Like the metrics, the overview reads unfinished actions through their partial indexes and
finished ones only for the last hour, through the finished-history index, so it costs the
same however much history is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Text, cast, func, select
from sqlalchemy.engine import Connection

from aol_core import scheduler
from aol_core.control import read_flags
from aol_core.errors import ActionNotFound
from aol_core.explain import explain
from aol_core.metrics import oldest_waiting, unfinished_counts
from aol_core.models import FINISHED, IS_FINISHED, Status
from aol_core.models import actions_table as actions
from aol_core.models import artifacts_table as artifacts
from aol_core.models import logs_table as logs
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import utcnow
from aol_core.worker_registry import live_workers

#: how far back the overview's throughput and failure rate look
RECENT = timedelta(hours=1)
#: most actions one listing returns
LIST_LIMIT = 200


@dataclass(frozen=True)
class Filter:
    """Which actions a listing shows; every field optional. ``text`` is looked for in the
    payload's JSON text (a scan of the matching rows: narrow it by status or type)."""

    status: str | None = None
    action_type: str | None = None
    key: str | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


def overview(engine: Engine, registry: PluginRegistry) -> dict[str, Any]:
    """Counts by status and type, the last hour's outcomes, lag, workers, plugins, schedules
    and the switches."""
    now = utcnow()
    with engine.connect() as conn:
        waiting = unfinished_counts(conn)
        recent = conn.execute(
            select(actions.c.status, actions.c.action_type, func.count())
            .where(IS_FINISHED, actions.c.finished_at >= now - RECENT)
            .group_by(actions.c.status, actions.c.action_type)).all()
        lag = oldest_waiting(conn, now)
        workers = live_workers(conn, now)
        schedules = scheduler.statuses(conn, registry, now)
        flags = read_flags(conn)
    types = sorted({t for _, t in waiting} | {t for _, t, _ in recent})
    finished = {(status, action_type): n for status, action_type, n in recent}
    rows = []
    for action_type in types:
        row: dict[str, Any] = {"action_type": action_type}
        for status in Status:
            row[status.value] = waiting.get((status.value, action_type),
                                            finished.get((status.value, action_type), 0))
        row["oldest_waiting_seconds"] = lag.get(action_type)
        rows.append(row)
    done = sum(finished.values())
    failed = sum(n for (status, _), n in finished.items()
                 if status in (Status.FAILED.value, Status.DLQ.value))
    return {
        "counts": rows,
        "last_hour": {"finished": done, "failed": failed,
                      "per_minute": round(done / (RECENT.total_seconds() / 60), 2),
                      "failure_rate": round(failed / done, 4) if done else None},
        "workers": [{"name": w.name, "host": w.host, "action_types": w.action_types,
                     "last_heartbeat": w.last_heartbeat, "versions": w.versions,
                     "degraded": w.degraded} for w in workers],
        "plugins": [{"plugin": p.label, "status": p.status, "action_types": p.action_types,
                     "error": p.error} for p in registry.plugins],
        "schedules": [{"name": s.schedule.name, "action_type": s.schedule.action_type,
                       "next_slot": s.next_slot, "last_slot": s.last_slot,
                       "missed": s.missed, "paused": s.paused} for s in schedules],
        "flags": asdict(flags),
    }


def list_actions(engine: Engine, wanted: Filter) -> list[dict[str, Any]]:
    """Newest first, at most ``wanted.limit`` (and :data:`LIST_LIMIT`)."""
    statement = (select(actions.c.id, actions.c.action_type, actions.c.status,
                        actions.c.attempts, actions.c.max_attempts, actions.c.not_before,
                        actions.c.created_at, actions.c.last_error)
                 .order_by(actions.c.id.desc()).limit(min(wanted.limit, LIST_LIMIT)))
    if wanted.status:
        statement = statement.where(actions.c.status == wanted.status)
    if wanted.action_type:
        statement = statement.where(actions.c.action_type == wanted.action_type)
    if wanted.key:
        statement = statement.where(actions.c.idempotency_key == wanted.key)
    if wanted.text:
        statement = statement.where(cast(actions.c.payload, Text).contains(wanted.text,
                                                                           autoescape=True))
    if wanted.since:
        statement = statement.where(actions.c.created_at >= wanted.since)
    if wanted.until:
        statement = statement.where(actions.c.created_at < wanted.until)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(statement)]


def action_page(engine: Engine, registry: PluginRegistry, action_id: int) -> dict[str, Any]:
    """One action: its fields, payload, result, log, artifacts and explanation."""
    with engine.connect() as conn:
        row = conn.execute(select(actions).where(actions.c.id == action_id)).first()
        if row is None:
            raise ActionNotFound(f"no action with id {action_id}")
        found = explain(conn, registry, action_id)
        log = conn.execute(select(logs.c.ts, logs.c.attempt, logs.c.level, logs.c.worker,
                                  logs.c.message)
                           .where(logs.c.action_id == action_id).order_by(logs.c.id)).all()
        stored = _artifact_list(conn, action_id)
    fields = dict(row._mapping)
    fields.pop("fencing_token")
    return {**fields, "finished": row.status in FINISHED,
            "explanation": [{"code": r.code, "message": r.message, "until": r.until}
                            for r in found.reasons],
            "log": [dict(line._mapping) for line in log], "artifacts": stored}


def artifact(engine: Engine, action_id: int, name: str) -> tuple[str, bytes]:
    """An artifact's media type and content."""
    with engine.connect() as conn:
        found = conn.execute(select(artifacts.c.media_type, artifacts.c.content).where(
            artifacts.c.action_id == action_id, artifacts.c.name == name)).first()
    if found is None:
        raise ActionNotFound(f"action {action_id} has no artifact named {name!r}")
    return found.media_type, found.content


def _artifact_list(conn: Connection, action_id: int) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in conn.execute(
        select(artifacts.c.name, artifacts.c.media_type, artifacts.c.sha256,
               func.length(artifacts.c.content).label("size"))
        .where(artifacts.c.action_id == action_id).order_by(artifacts.c.name))]
