"""The checks behind ``aol health``: each names what failed, so an operator knows what to fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from aol_core import schema
from aol_core.control import read_flags
from aol_core.db import mask_url
from aol_core.models import IS_CLAIMABLE, Action
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
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok


def check_health(engine: Engine, registry: PluginRegistry) -> HealthReport:
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
        report.counts = dict(conn.execute(
            select(Action.status, func.count()).group_by(Action.status)).all())
        live = live_workers(conn, now)
        waiting = dict(conn.execute(
            select(Action.action_type, func.count())
            .where(IS_CLAIMABLE).group_by(Action.action_type)).all())
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
    return report
