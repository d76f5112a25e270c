"""Schedules in the database: ticking them from every worker, and the operator's commands.

There is no leader. Any number of workers call :func:`tick`, each with short transactions
and nothing held between ticks, and each slot is still enqueued exactly once:

* a schedule's state row says up to when its slots are decided (``covered_until``);
* a tick moves it forward only if it still holds the value the tick read (compare and set),
  and enqueues the slots it covers in that same transaction;
* so the transactions that succeed cover back-to-back, non-overlapping spans of time, and
  each slot lies in exactly one of them. A tick that lost the race changes nothing. The
  slot's idempotency key (schedule name and slot) is a second guard: enqueuing it again
  would find the action already there.

Ticks compare slots with the database's clock on PostgreSQL (see :func:`database_now`), like
due times and leases, so a worker whose clock is off neither enqueues slots early nor late.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aol_core.config import Settings
from aol_core.drivers import driver_for
from aol_core.errors import AOLError, InvalidSchedule, ScheduleNotFound
from aol_core.models import ScheduleDefinition
from aol_core.models import control_table as control
from aol_core.models import schedule_state_table as states
from aol_core.models import schedules_table as definitions
from aol_core.plugins import PluginRegistry
from aol_core.queue import Enqueued, NewAction, enqueue_many
from aol_core.schedules import CATCH_UP_ALL_LIMIT, ON_TIME, CatchUp, Schedule
from aol_core.timeutil import require_aware, utcnow
from aol_core.worker_registry import live_workers

log = logging.getLogger("aol.schedules")


def slot_key(name: str, slot: datetime) -> str:
    """The idempotency key of a schedule's action for one slot."""
    return f"aol-schedule:{name}:{slot.isoformat()}"


@dataclass(frozen=True)
class Plan:
    """What a tick decides for the slots since ``covered_until``: enqueue ``slots``, count
    ``missed`` more, and call everything up to ``through`` decided."""

    slots: list[datetime]
    missed: int
    through: datetime


def plan(schedule: Schedule, covered_until: datetime, now: datetime) -> Plan | None:
    """Apply the schedule's catch-up policy to its slots in (covered_until, now]; None if
    there are none."""
    recent: deque[datetime] = deque(maxlen=CATCH_UP_ALL_LIMIT)
    due = 0
    for slot in schedule.slots(covered_until, now):
        recent.append(slot)
        due += 1
    if not due:
        return None
    latest = recent[-1]
    if schedule.catch_up is CatchUp.ALL:
        chosen = list(recent)
    elif schedule.catch_up is CatchUp.SKIP:
        chosen = [latest] if now - latest <= ON_TIME else []
    else:
        chosen = [latest]
    return Plan(chosen, due - len(chosen), latest)


def declared(conn: Connection, registry: PluginRegistry) -> list[Schedule]:
    """The plugins' schedules, then the operators' (a plugin's name takes precedence)."""
    return _with_plugins(registry, _operator_schedules(conn))


def _operator_schedules(conn: Connection) -> list[Schedule]:
    return [_from_row(row) for row in conn.execute(select(definitions)
                                                    .order_by(definitions.c.name))]


def _with_plugins(registry: PluginRegistry, operator: list[Schedule]) -> list[Schedule]:
    return [*registry.schedules.values(),
            *(s for s in operator if s.name not in registry.schedules)]


def database_now(conn: Connection) -> datetime:
    """Now on the clock due times and leases are kept by (see ``Driver.time``): the
    database's on PostgreSQL, so workers whose clocks disagree tick the same slots at the
    same moment; this machine's on SQLite; the test kit's fixed clock while one is set."""
    now: datetime = conn.execute(select(driver_for(conn).time(utcnow()))).scalar_one()
    return now


def _version(conn: Connection) -> int:
    """How many times operators' schedules changed (added or removed)."""
    return int(conn.execute(select(control.c.schedules_version)
                            .where(control.c.id == 1)).scalar_one())


def _changed(conn: Connection) -> None:
    """Count a change to operators' schedules, so every worker reads them again."""
    conn.execute(update(control).where(control.c.id == 1)
                 .values(schedules_version=control.c.schedules_version + 1))


def _from_row(row: Any) -> Schedule:
    every = None if row.every_seconds is None else timedelta(seconds=row.every_seconds)
    return Schedule(row.name, row.action_type, cron=row.cron, every=every,
                    timezone=row.timezone, payload=row.payload, catch_up=row.catch_up,
                    source="operator")


class Ticker:
    """Ticks the schedules for one worker, about once a second.

    Keeps operators' schedule definitions between ticks and reads them again only when
    ``aol_control.schedules_version`` moved (``aol schedules add`` and ``remove`` move it), so
    a tick with nothing due is two small reads whatever the number of schedules, and a
    schedule an operator adds while workers run is ticked from their next tick on.
    """

    def __init__(self, engine: Engine, registry: PluginRegistry,
                 settings: Settings | None = None) -> None:
        self.engine = engine
        self.registry = registry
        self.settings = settings
        self._operator: list[Schedule] = []
        self._version: int | None = None

    def _schedules(self, conn: Connection) -> list[Schedule]:
        version = _version(conn)  # read first: a change after it shows at the next tick
        if version != self._version:
            self._operator, self._version = _operator_schedules(conn), version
        return _with_plugins(self.registry, self._operator)

    def tick(self, now: datetime | None = None) -> list[Enqueued]:
        """Enqueue the due slots of every schedule whose action type the registry runs.

        ``now`` is injectable for tests; by default the clock of :func:`database_now`.
        """
        routes = self.registry.routes
        with self.engine.connect() as conn:
            now = database_now(conn) if now is None else require_aware(now, "now")
            runnable = [s for s in self._schedules(conn) if s.action_type in routes]
            found = {row.name: row for row in conn.execute(select(states))} if runnable else {}
        enqueued: list[Enqueued] = []
        for schedule in runnable:
            state = found.get(schedule.name)
            if state is None:
                _start(self.engine, schedule.name, now)
                continue
            decided = None if state.paused else plan(schedule, state.covered_until, now)
            if decided is not None:
                enqueued += _advance(self.engine, self.registry, self.settings, schedule,
                                     state.covered_until, decided, now)
        return enqueued


def tick(
    engine: Engine, registry: PluginRegistry, *, now: datetime | None = None,
    settings: Settings | None = None,
) -> list[Enqueued]:
    """One tick with nothing kept from earlier ones (see :class:`Ticker`)."""
    return Ticker(engine, registry, settings).tick(now)


def _start(engine: Engine, name: str, now: datetime) -> None:
    """A schedule first seen starts with the next slot (another worker may start it first)."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(states).values(_fresh_state(name, now)))
    except IntegrityError:
        pass


def _fresh_state(name: str, now: datetime, paused: bool = False) -> dict[str, Any]:
    return {"name": name, "covered_until": now, "last_slot": None, "missed": 0,
            "paused": paused, "last_error": None, "updated_at": now}


def _advance(
    engine: Engine, registry: PluginRegistry, settings: Settings | None, schedule: Schedule,
    covered_until: datetime, decided: Plan, now: datetime,
) -> list[Enqueued]:
    mine = states.c.name == schedule.name
    with Session(engine) as session, session.begin():
        moved = session.connection().execute(
            update(states).where(mine, states.c.covered_until == covered_until).values(
                covered_until=decided.through, missed=states.c.missed + decided.missed,
                updated_at=now,
            )
        ).rowcount
        if moved != 1:
            return []  # another worker decided these slots first
        if decided.missed:
            log.warning("schedule %s: %d slot(s) missed (catch-up %s)", schedule.name,
                        decided.missed, schedule.catch_up)
        if not decided.slots:
            return []
        items = [NewAction(schedule.action_type, schedule.payload_for(slot),
                           idempotency_key=slot_key(schedule.name, slot), not_before=slot,
                           schedule_slot=slot)
                 for slot in decided.slots]
        try:
            with session.begin_nested():
                done = enqueue_many(session, items, catalog=registry, settings=settings)
        except AOLError as exc:  # an invalid payload, say: counted and shown, not retried
            log.warning("schedule %s: could not enqueue %d slot(s): %s", schedule.name,
                        len(items), exc)
            session.execute(update(states).where(mine).values(
                missed=states.c.missed + len(items), last_error=str(exc)))
            return []
        session.execute(update(states).where(mine).values(
            last_slot=decided.slots[-1], last_error=None))
    return done


# --- listing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleStatus:
    """A schedule as ``aol schedules`` shows it. ``routable``: some installed plugin or live
    worker runs its action type."""

    schedule: Schedule
    next_slot: datetime | None
    last_slot: datetime | None
    missed: int
    paused: bool
    routable: bool
    last_error: str | None


def statuses(conn: Connection, registry: PluginRegistry, now: datetime) -> list[ScheduleStatus]:
    found = {row.name: row for row in conn.execute(select(states))}
    runnable = set(registry.routes)
    for worker in live_workers(conn, now):
        runnable.update(worker.action_types or ())
    listed = []
    for schedule in declared(conn, registry):
        state = found.get(schedule.name)
        paused = bool(state and state.paused)
        after = now if state is None else max(now, state.covered_until)
        listed.append(ScheduleStatus(
            schedule, None if paused else schedule.next_slot(after),
            state.last_slot if state else None, state.missed if state else 0, paused,
            schedule.action_type in runnable, state.last_error if state else None,
        ))
    return listed


# --- operator commands ----------------------------------------------------------------------


def add_schedule(
    session: Session, schedule: Schedule, registry: PluginRegistry, now: datetime | None = None
) -> datetime:
    """Store an operator's schedule and return its first slot: the first one after ``now``
    (by default the clock of :func:`database_now`)."""
    now = database_now(session.connection()) if now is None else now
    first = schedule.next_slot(now)
    if first is None:
        raise InvalidSchedule(f"schedule {schedule.name}: {schedule.expression!r} has no slot "
                              "after now")
    existing = session.get(ScheduleDefinition, schedule.name)
    if schedule.name in registry.schedules or existing is not None:
        raise InvalidSchedule(f"a schedule named {schedule.name} exists already")
    session.add(ScheduleDefinition(
        name=schedule.name, action_type=schedule.action_type, cron=schedule.cron,
        every_seconds=None if schedule.every is None else int(schedule.every.total_seconds()),
        timezone=schedule.timezone, payload=dict(schedule.payload),
        catch_up=str(schedule.catch_up), created_at=now,
    ))
    session.flush()
    conn = session.connection()
    conn.execute(delete(states).where(states.c.name == schedule.name))  # a removed namesake's
    conn.execute(insert(states).values(_fresh_state(schedule.name, now)))
    _changed(conn)
    return first


def set_paused(
    session: Session, name: str, paused: bool, registry: PluginRegistry,
    now: datetime | None = None,
) -> None:
    """Pause or resume a schedule. Slots while paused are skipped on purpose, not missed:
    a resumed schedule starts with the first slot after ``now``."""
    now = database_now(session.connection()) if now is None else now
    _require_known(session, name, registry)
    conn = session.connection()
    values: dict[str, Any] = {"paused": paused, "updated_at": now}
    if not paused:
        values["covered_until"] = case((states.c.covered_until < now, now),
                                       else_=states.c.covered_until)
    if conn.execute(update(states).where(states.c.name == name).values(values)).rowcount == 0:
        conn.execute(insert(states).values(_fresh_state(name, now, paused)))


def remove_schedule(session: Session, name: str, registry: PluginRegistry) -> None:
    """Delete an operator's schedule; actions it enqueued stay."""
    if name in registry.schedules:
        raise ScheduleNotFound(f"schedule {name} is declared by a plugin: it can be paused, "
                               "not removed")
    _require_known(session, name, registry)
    conn = session.connection()
    conn.execute(delete(definitions).where(definitions.c.name == name))
    conn.execute(delete(states).where(states.c.name == name))
    _changed(conn)


def _require_known(session: Session, name: str, registry: PluginRegistry) -> None:
    if name in registry.schedules:
        return
    if session.get(ScheduleDefinition, name) is None:
        raise ScheduleNotFound(f"no schedule named {name}")

