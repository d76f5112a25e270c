"""The checks behind ``aol health``: each names what failed, so an operator knows what to fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from aol_core import scheduler, schema
from aol_core.config import Settings
from aol_core.control import read_flags
from aol_core.db import mask_url
from aol_core.drivers import driver_for
from aol_core.models import IS_CLAIMABLE, IS_HELD, IS_RUNNING, Action, Status
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import utcnow
from aol_core.worker_registry import live_workers


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class HealthReport:
    database: str
    checks: list[Check] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: keys of ``counts`` that are the database's estimate, not a count
    estimated: list[str] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok


#: an action of a type without a timeout is stuck once it has run this many leases
STUCK_AFTER_LEASES = 3


def check_health(
    engine: Engine, registry: PluginRegistry, settings: Settings | None = None
) -> HealthReport:
    settings = settings if settings is not None else Settings()
    report = HealthReport(mask_url(engine.url))
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:
        report.add("database reachable", False, str(exc).strip().splitlines()[0])
        return report
    report.add("database reachable", True, report.database)
    current, head = schema.current_revision(engine), schema.HEAD_REVISION
    if not report.add("schema current", current == head,
                      f"revision {current}" if current == head
                      else f"revision {current}, expected {head}: run aol db upgrade"):
        return report

    behind = [c for c in schema.status(engine, registry)[1:] if c.behind]
    report.add("plugin tables current", not behind,
               "; ".join(f"{c.name} at {c.current or 'no revision'}, expected {c.head}"
                         if not c.missing else f"{c.name} misses {', '.join(c.missing)}"
                         for c in behind) + ": run aol db upgrade" if behind
               else "every loaded plugin's tables are at their newest revision")

    now = utcnow()
    with engine.connect() as conn:
        flags = read_flags(conn)
        report.flags = {"paused": flags.paused, "killed": flags.killed,
                        "proof_mode": flags.proof_mode}
        # one walk of the claim index, in its order: no sorting however many wait
        waiting_by_type = conn.execute(
            select(Action.action_type, func.count(),
                   func.count().filter(Action.status == Status.RETRY.value))
            .where(IS_CLAIMABLE).group_by(Action.action_type)).all()
        waiting = {action_type: n for action_type, n, _ in waiting_by_type}
        retrying = sum(r for _, _, r in waiting_by_type)
        report.counts, report.estimated = _counts(conn, sum(waiting.values()), retrying)
        live = live_workers(conn, now)
        held, oldest_held = conn.execute(
            select(func.count(), func.min(Action.updated_at))
            .where(IS_HELD)).one()
        report.counts[Status.HELD.value] = held
        if "finished" in report.counts:  # the estimate counted them as finished
            report.counts["finished"] = max(0, report.counts["finished"] - held)
        schedules = scheduler.statuses(conn, registry, now)
        stuck = _stuck(conn, registry, settings, now)
        lagging = dict(conn.execute(
            select(Action.action_type, func.min(Action.not_before))
            .where(IS_CLAIMABLE, Action.not_before <= now - settings.health_max_lag)
            .group_by(Action.action_type)).all())
    report.workers = [
        {"name": w.name, "host": w.host, "pid": w.pid, "action_types": w.action_types,
         "degraded": w.degraded, "last_heartbeat": w.last_heartbeat.isoformat(),
         "versions": w.versions}
        for w in live
    ]
    report.add("a live worker", bool(live),
               f"{len(live)} live: {', '.join(w.name for w in live)}" if live
               else "no worker has heartbeaten recently: start one with aol worker")

    broken = [f"{p.label}: {p.error}" for p in registry.broken]
    broken += [f"worker {w.name} runs degraded" for w in live if w.degraded]
    report.add("no broken plugins", not broken, "; ".join(broken) or
               f"{len(registry.loaded)} loaded here")
    report.add("no conflicting plugins", not registry.conflicts,
               "; ".join(registry.conflicts) or "every action type has one plugin")

    runnable = {t for w in live for t in (w.action_types or ())}
    orphans = {t: n for t, n in waiting.items() if t not in runnable}
    report.add(
        "every waiting action has a worker", not orphans,
        "; ".join(f"{n} {t} action(s) wait but no live worker runs {t}"
                  for t, n in sorted(orphans.items()))
        or f"{sum(waiting.values())} waiting, all runnable",
    )
    report.add(
        "no action held for a person", not held,
        f"{held} held (oldest since {oldest_held:%Y-%m-%d %H:%M:%S} UTC): see aol actions list "
        "--status HELD, then aol actions release or resolve" if held else "none held",
    )
    unroutable = [s.schedule for s in schedules if not s.routable]
    report.add(
        "every schedule's action type has a plugin", not unroutable,
        "; ".join(f"schedule {s.name} enqueues {s.action_type}, which no installed plugin "
                  "or live worker runs" for s in unroutable)
        or f"{len(schedules)} schedule(s), all routable",
    )
    report.add("no action running too long", not stuck, "; ".join(stuck) or
               f"none past its type's timeout or {STUCK_AFTER_LEASES} leases")
    report.add(
        "queue lag", not lagging,
        "; ".join(f"the oldest due {t} action has waited {_ago(now, since)} "
                  f"(limit {settings.health_max_lag}; AOL_HEALTH_MAX_LAG)"
                  for t, since in sorted(lagging.items()))
        or f"no due action has waited longer than {settings.health_max_lag}",
    )
    return report


def _counts(conn: Connection, waiting: int, retrying: int) -> tuple[dict[str, int], list[str]]:
    """Actions waiting (counted through the claim index) and running (through the lease
    index): partial indexes that hold only them. Finished history, which may be millions of
    rows, only as an estimate where the database keeps one (PostgreSQL: the table's row
    estimate less the unfinished); SQLite keeps none, and counting would read it all.
    Returns the counts and which of them are estimates."""
    counts = {
        Status.PENDING.value: waiting - retrying,
        Status.RETRY.value: retrying,
        Status.RUNNING.value: conn.scalar(select(func.count()).where(IS_RUNNING)) or 0,
    }
    rows = driver_for(conn).estimated_actions(conn)
    if rows is None:
        return counts, []
    return {**counts, "finished": max(0, rows - sum(counts.values()))}, ["finished"]


def _stuck(
    conn: Connection, registry: PluginRegistry, settings: Settings, now: datetime
) -> list[str]:
    """Actions RUNNING past their type's timeout, or past several leases without one (a
    read of running rows only, which their partial index holds)."""
    leases = timedelta(seconds=STUCK_AFTER_LEASES * settings.lease_seconds)
    limits = {name: timedelta(seconds=route.spec.timeout)
              for name, route in registry.routes.items() if route.spec.timeout is not None}
    shortest = min([leases, *limits.values()])
    rows = conn.execute(
        select(Action.id, Action.action_type, Action.started_at, Action.lease_owner)
        .where(IS_RUNNING, Action.started_at < now - shortest).order_by(Action.started_at)
    ).all()
    return [
        f"action {row.id} ({row.action_type}) has run {_ago(now, row.started_at)} on "
        f"{row.lease_owner}, past its "
        + ("timeout" if row.action_type in limits else f"{STUCK_AFTER_LEASES} leases")
        for row in rows
        if row.started_at < now - limits.get(row.action_type, leases)
    ]


def _ago(now: datetime, since: datetime) -> str:
    return str(timedelta(seconds=round((now - since).total_seconds())))
