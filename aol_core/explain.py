"""``aol explain``: why an action is where it is, in words an operator can act on.

Every queue's most common question is "why hasn't my action run?". The answer is spread
over the action's row, the control switches, the live workers and the types they run, the
installed plugins, the flow limits in force, the actions ahead of it in claim order and its
log. :func:`explain` reads them all (each through an index: the claim index for what waits,
the lease index for what runs) and returns the reasons in the order they hold the action:
what stops every worker first, then what stops this action's type, then this action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from aol_core import flow
from aol_core.control import read_flags
from aol_core.drivers import driver_for
from aol_core.errors import ActionNotFound
from aol_core.models import CLAIMABLE, IS_CLAIMABLE, Status
from aol_core.models import actions_table as actions
from aol_core.models import logs_table as logs
from aol_core.plugins import PluginRegistry
from aol_core.specs import RateLimit
from aol_core.timeutil import utcnow
from aol_core.worker_registry import live_workers

#: log lines an explanation carries, the newest
LOG_LINES = 10


@dataclass(frozen=True)
class Reason:
    """One thing that puts the action where it is. ``code`` is stable, for scripts:
    killed, paused, no_plugin, no_live_worker, not_due, snoozed, backoff, behind,
    rate_limited, capped, proof_mode, ready, running, lease_expired, held, finished."""

    code: str
    message: str
    #: when this reason stops holding the action, where that is known
    until: datetime | None = None


@dataclass
class Explanation:
    action_id: int
    action_type: str
    status: str
    attempts: int
    max_attempts: int
    not_before: datetime
    last_error: str | None
    reasons: list[Reason] = field(default_factory=list)
    #: the newest :data:`LOG_LINES` lines of its log, oldest first
    log: list[dict[str, Any]] = field(default_factory=list)

    def because(self, code: str, message: str, until: datetime | None = None) -> None:
        self.reasons.append(Reason(code, message, until))


def explain(conn: Connection, registry: PluginRegistry, action_id: int,
            now: datetime | None = None) -> Explanation:
    """Why action ``action_id`` is where it is; ``registry`` is the installed plugins (to
    name the one that would run a type no live worker runs)."""
    now = utcnow() if now is None else now
    row = conn.execute(select(actions).where(actions.c.id == action_id)).first()
    if row is None:
        raise ActionNotFound(f"no action with id {action_id}")
    found = Explanation(row.id, row.action_type, row.status, row.attempts, row.max_attempts,
                        row.not_before, row.last_error)
    found.log = _log(conn, action_id)
    if row.status in CLAIMABLE:
        _waiting(conn, registry, row, found, now)
    elif row.status == Status.RUNNING.value:
        _running(conn, row, found, now)
    elif row.status == Status.HELD.value:
        found.because("held", f"held for a person since {_at(row.updated_at)} "
                      f"({row.last_error or 'no reason given'}): after checking its effect, "
                      f"aol actions release {row.id} to run it again, or aol actions resolve "
                      f"{row.id} --success|--failed to record what became of it")
    else:
        found.because("finished", _finished(row, found.log))
    return found


def _waiting(conn: Connection, registry: PluginRegistry, row: Any, found: Explanation,
             now: datetime) -> None:
    """A PENDING or RETRY action: everything that keeps it from being claimed."""
    flags = read_flags(conn)
    if flags.killed:
        found.because("killed", "the kill switch is set: every worker stops and none starts "
                      "(aol control revive clears it)")
    if flags.paused:
        found.because("paused", "workers are paused: none claims anything "
                      "(aol control resume)")
    _routing(conn, registry, row.action_type, found, now)
    db_now: datetime = conn.execute(select(driver_for(conn).time(now))).scalar_one()
    due = row.not_before <= db_now
    if not due:
        # a snooze is the last thing its attempt logs; a later failure or operator logs after
        newest = found.log[-1]["message"] if found.log else ""
        if " snoozed until " in newest:
            found.because("snoozed", f"its handler snoozed it ({newest}); due "
                          f"{_at(row.not_before)}", row.not_before)
        elif row.status == Status.RETRY.value:
            found.because("backoff", f"attempt {row.attempts} of {row.max_attempts} failed "
                          f"({row.last_error}); the retry is due {_at(row.not_before)}",
                          row.not_before)
        else:
            found.because("not_due", f"waits for its not-before time, {_at(row.not_before)} "
                          f"(in {_span(row.not_before - db_now)})", row.not_before)
    else:
        ahead = _ahead(conn, row, db_now)
        if ahead:
            found.because("behind", f"behind {ahead} due {row.action_type} action(s) of "
                          f"higher or equal priority (its priority: {row.priority}), claimed "
                          "before it")
        _limits(conn, registry, row, found, now, ahead)
    if row.proof_mode or flags.proof_mode:
        found.because("proof_mode", "it will run in proof mode (its handler records what it "
                      "would do), forced by "
                      + ("its own flag (aol enqueue --proof)" if row.proof_mode
                         else "the global switch (aol control proof off)"))
    if due and not any(r.code != "proof_mode" for r in found.reasons):
        found.because("ready", f"due since {_at(row.not_before)} and nothing holds it: the "
                      f"next poll of a worker running {row.action_type} claims it")


def _routing(conn: Connection, registry: PluginRegistry, action_type: str,
             found: Explanation, now: datetime) -> None:
    """Whether a live worker runs the type, and if not, which plugin would."""
    if any(action_type in (w.action_types or ()) for w in live_workers(conn, now)):
        return
    route = registry.routes.get(action_type)
    if route is not None:
        found.because("no_live_worker", f"no live worker runs {action_type}: start one with "
                      f"plugin {route.plugin.label} installed (aol worker)")
        return
    elsewhere = [p for p in registry.plugins if action_type in p.action_types]
    found.because("no_plugin", f"no live worker runs {action_type}, and no plugin installed "
                  "here would: " + ("; ".join(f"{p.label} declares it but is {p.status}"
                                              for p in elsewhere)
                                    or "install the plugin that declares it"))


def _ahead(conn: Connection, row: Any, db_now: datetime) -> int:
    """Due actions of its type that a claim takes before it (claim order: priority, then
    not-before, then id), counted through the claim index."""
    earlier = or_(
        actions.c.priority > row.priority,
        and_(actions.c.priority == row.priority,
             or_(actions.c.not_before < row.not_before,
                 and_(actions.c.not_before == row.not_before, actions.c.id < row.id))),
    )
    return int(conn.scalar(
        select(func.count()).where(IS_CLAIMABLE, actions.c.action_type == row.action_type,
                                   actions.c.not_before <= db_now, earlier)) or 0)


def _limits(conn: Connection, registry: PluginRegistry, row: Any, found: Explanation,
            now: datetime, ahead: int) -> None:
    """The rate limit and concurrency cap in force for its type, where one is full."""
    spec = registry.routes.get(row.action_type)
    in_force = flow.overrides(conn).get(
        row.action_type, flow.declared(spec.spec) if spec else flow.Limits())
    if not in_force:
        return
    for use in flow.use_of(conn, row.action_type, in_force, row.payload, now):
        if not use.full:
            continue
        whose = f" for {use.key}" if use.key else ""
        if isinstance(use.limit, RateLimit):
            found.because("rate_limited", f"rate-limited: {use.used} of {use.limit.count} "
                          f"starts{whose} in the last {_span(use.limit.period)}; the next "
                          f"start is allowed {_at(use.frees_at)}", use.frees_at)
        else:
            found.because("capped", f"capped: {use.used} of {use.limit.count} "
                          f"{row.action_type} action(s){whose} run at once; it starts when "
                          "one of them finishes")
    if ahead >= flow.CANDIDATES:
        found.because("behind", f"a claim looks at the first {flow.CANDIDATES} due actions "
                      f"of a limited type only; it is further back")


def _running(conn: Connection, row: Any, found: Explanation, now: datetime) -> None:
    owner = row.lease_owner
    alive = {w.name: w for w in live_workers(conn, now)}
    worker = alive.get(owner)
    if worker is not None:
        found.because("running", f"leased by worker {owner} since {_at(row.started_at)} "
                      f"(attempt {row.attempts} of {row.max_attempts}); the worker is alive "
                      f"(last heartbeat {_at(worker.last_heartbeat)}) and renews the lease "
                      f"until it finishes", row.lease_expires_at)
        return
    found.because("lease_expired" if row.lease_expires_at < now else "running",
                  f"leased by worker {owner} since {_at(row.started_at)} (attempt "
                  f"{row.attempts} of {row.max_attempts}), but that worker is not alive: "
                  f"when the lease runs out ({_at(row.lease_expires_at)}) a worker "
                  + ("returns it to RETRY" if row.attempts < row.max_attempts
                     else "moves it to DLQ (no attempts left)"), row.lease_expires_at)


def _finished(row: Any, log: list[dict[str, Any]]) -> str:
    after = f"after {row.attempts} attempt(s)"
    when = _at(row.finished_at) if row.finished_at else "at an unknown time"
    if row.status == Status.SUCCESS.value:
        return f"finished: succeeded {when}, {after}"
    if row.status == Status.FAILED.value:
        return (f"finished: failed permanently {when}, {after}, not retried "
                f"({row.last_error}); aol actions retry {row.id} runs it again")
    if row.status == Status.DLQ.value:
        return (f"finished: in the DLQ since {when}: all {row.max_attempts} attempts used up "
                f"(last error: {row.last_error}); aol actions retry {row.id} runs it again")
    by = next((line["message"] for line in reversed(log)
               if line["message"].startswith("cancelled")), "cancelled")
    return f"finished: {by} {when}, {after}; aol actions retry {row.id} runs it again"


def _log(conn: Connection, action_id: int) -> list[dict[str, Any]]:
    newest = conn.execute(
        select(logs.c.ts, logs.c.attempt, logs.c.level, logs.c.worker, logs.c.message)
        .where(logs.c.action_id == action_id).order_by(logs.c.id.desc()).limit(LOG_LINES)
    ).all()
    return [{"ts": line.ts, "attempt": line.attempt, "level": line.level,
             "worker": line.worker, "message": line.message} for line in reversed(newest)]


def _at(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _span(length: timedelta) -> str:
    return str(timedelta(seconds=max(0, round(length.total_seconds()))))
