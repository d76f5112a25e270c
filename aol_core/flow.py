"""Rate limits and concurrency caps, held across every worker through the database.

The worker consults this module at claim time; handlers never see it. Types without limits
keep the driver's batch claim untouched; each limited type is claimed on its own, in a
transaction that first takes the type's flow lock (an advisory lock on PostgreSQL, the
write lock on SQLite), so counting and claiming are one step on every machine.

* A start is a claim, recorded in ``aol_flow_starts`` under the limit's key. A rate limit
  counts starts in a sliding window: a claim at ``t`` is allowed while fewer than ``count``
  starts are later than ``t - period``, so no window of that length ever holds more.
* A concurrency cap counts the actions of its key that are RUNNING (claimed and not settled,
  including those claimed ahead and not yet started by their worker).
* A per-key limit keeps its count per value of a payload field; an action without the field
  shares the key of every other action without it. Enqueue writes each action's key into
  ``aol_actions.flow_key`` (from the field its type declares), which the claim index holds,
  so a claim skips the keys at their limit in SQL: however many actions of a full key wait
  ahead, the actions of other keys behind them are claimed.
* Every action a claim looks at has its key computed again from its payload with the field
  in force. One whose stored key differs (enqueued before the key column existed, or while
  an operator's override keys the type by another field) is checked by the computed key and
  gets it stored, so later claims skip it in SQL too: at most :data:`CANDIDATES` such actions
  are looked at per claim, each once.
* A limit on the whole type that is reached skips the type without reading its actions.
* A worker whose claim of a limited type found nothing to start leaves that type alone for
  a poll interval, or longer after a slow claim (:meth:`FlowControl.claim`), so a backlog
  held back by its limits costs a bounded share of the worker's time, however often it
  claims other types.
* An action over a limit is simply not claimed: it stays waiting, uses no attempt, is no
  failure.

Operators' overrides (``aol limits set``) live in ``aol_flow_limits``; an override replaces
both declared limits of its type, and every worker reads them again each poll interval.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Text, bindparam, cast, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from aol_core.drivers import driver_for
from aol_core.drivers.base import CLAIM_COLUMNS, CLAIM_ORDER, Claim, claimed, claims_from
from aol_core.errors import InvalidPayload
from aol_core.limits import (
    MAX_ACTION_TYPE_CHARS,
    MAX_KEY_CHARS,
    MAX_NAME_CHARS,
    check_text,
    decode_object,
)
from aol_core.models import IS_CLAIMABLE, IS_RUNNING
from aol_core.models import actions_table as actions
from aol_core.models import flow_limits_table as flow_limits
from aol_core.models import flow_starts_table as starts
from aol_core.specs import ActionSpec, Cap, RateLimit, key_field
from aol_core.timeutil import utcnow

#: due actions of a limited type looked at per claim, in claim order, after those of keys at
#: their limit are skipped
CANDIDATES = 200
#: a limited type whose claim found nothing to start is left alone at least this many times
#: as long as that claim took: looking at a backlog held back by its limits then costs a
#: worker about 2 % of its time, however large the backlog ...
QUIET_FACTOR = 50
#: ... but never longer than this many seconds (a claim that waited long for the type's lock
#: says nothing about the backlog)
QUIET_LIMIT_SECONDS = 30.0


@dataclass(frozen=True)
class Limits:
    """The limits in force for one action type."""

    rate: RateLimit | None = None
    cap: Cap | None = None

    def __bool__(self) -> bool:
        return self.rate is not None or self.cap is not None

    @property
    def key_field(self) -> str | None:
        """The payload field the per-key limits are kept by (the key ``flow_key`` holds)."""
        return key_field(self.rate, self.cap)


@dataclass(frozen=True)
class LimitRow:
    """A type's limits as ``aol limits`` shows them, and whether an operator set them."""

    action_type: str
    limits: Limits
    overridden: bool


def declared(spec: ActionSpec) -> Limits:
    return Limits(spec.rate_limit, spec.concurrency)


def overrides(conn: Connection) -> dict[str, Limits]:
    """Every operator override, by action type."""
    found = {}
    for row in conn.execute(select(flow_limits)):
        key = row.key_field
        rate = (RateLimit(row.rate_count, timedelta(seconds=row.rate_seconds), key)
                if row.rate_count is not None else None)
        cap = Cap(row.concurrency, key) if row.concurrency is not None else None
        found[row.action_type] = Limits(rate, cap)
    return found


def set_override(conn: Connection, action_type: str, rate: tuple[int, timedelta] | None,
                 concurrency: int | None, key: str | None) -> Limits:
    """Replace ``action_type``'s limits for every worker (validated like a spec's)."""
    check_text(action_type, "action type", MAX_ACTION_TYPE_CHARS)
    if key is not None:
        check_text(key, "key field", MAX_NAME_CHARS)
    limits = Limits(RateLimit(rate[0], rate[1], key) if rate else None,
                    Cap(concurrency, key) if concurrency is not None else None)
    values = {"rate_count": rate[0] if rate else None,
              "rate_seconds": rate[1].total_seconds() if rate else None,
              "concurrency": concurrency, "key_field": key, "updated_at": utcnow()}
    if not conn.execute(update(flow_limits).where(flow_limits.c.action_type == action_type)
                        .values(**values)).rowcount:
        conn.execute(insert(flow_limits).values(action_type=action_type, **values))
    return limits


def clear_override(conn: Connection, action_type: str) -> bool:
    """Go back to the declared limits; False if there was no override."""
    return bool(conn.execute(
        delete(flow_limits).where(flow_limits.c.action_type == action_type)).rowcount)


def listing(conn: Connection, specs: Mapping[str, ActionSpec]) -> list[LimitRow]:
    """Each type with limits in force, declared or overridden, by name."""
    found = overrides(conn)
    rows = [LimitRow(name, found.get(name, declared(spec)), name in found)
            for name, spec in specs.items() if name in found or declared(spec)]
    rows += [LimitRow(name, limits, True) for name, limits in found.items()
             if name not in specs]
    return sorted(rows, key=lambda r: r.action_type)


class FlowControl:
    """A worker's view of which of its types are limited, refreshed once a poll interval."""

    def __init__(self, engine: Engine, specs: Mapping[str, ActionSpec],
                 refresh_seconds: float) -> None:
        self.engine = engine
        self.specs = specs
        self.refresh_seconds = refresh_seconds
        self._limits: dict[str, Limits] = {}
        self._read_at: float | None = None
        #: types whose last claim found nothing they may start, and until when (monotonic)
        #: this worker does not look at them again
        self._quiet_until: dict[str, float] = {}

    def limited(self) -> dict[str, Limits]:
        """This worker's types that have limits, with them."""
        clock = time.monotonic()
        if self._read_at is None or clock - self._read_at >= self.refresh_seconds:
            with self.engine.connect() as conn:
                found = overrides(conn)
            in_force = {name: found.get(name, declared(spec))
                        for name, spec in self.specs.items()}
            self._limits = {name: limits for name, limits in in_force.items() if limits}
            self._read_at = clock
        return self._limits

    def claim(self, *, worker: str, limit: int, lease_seconds: float,
              now: datetime) -> list[Claim]:
        """Claim up to ``limit`` due actions of the limited types, within their limits.

        A type whose claim found nothing to start is left alone for a refresh interval (the
        poll interval), or :data:`QUIET_FACTOR` times as long as that claim took if longer
        (at most :data:`QUIET_LIMIT_SECONDS`): a claim that skips a long backlog of keys at
        their limit reads all of it, and a worker busy with other types claims many times a
        second, so that backlog costs a bounded share of the worker's time, not one read per
        claim. An action of a limited type may so wait that much longer to start."""
        claims: list[Claim] = []
        for action_type, limits in self.limited().items():
            if len(claims) >= limit:
                break
            clock = time.monotonic()
            if self._quiet_until.get(action_type, clock) > clock:
                continue
            taken = claim_type(self.engine, action_type, limits, worker=worker,
                               limit=limit - len(claims), lease_seconds=lease_seconds,
                               now=now)
            if not taken:
                took = time.monotonic() - clock
                quiet = min(max(self.refresh_seconds, QUIET_FACTOR * took),
                            QUIET_LIMIT_SECONDS)
                self._quiet_until[action_type] = clock + quiet
            claims += taken
        return sorted(claims, key=lambda c: c.sort_key)


def key_of(field: str | None, payload: Any) -> str:
    """The key an action counts under for a limit keyed by ``field`` ('' for none): the
    field's name and value (a string as it is, anything else as JSON), or its SHA-256 when
    that is longer than the key columns."""
    if field is None:
        return ""
    value = payload.get(field) if isinstance(payload, dict) else None
    shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    key = f"{field}={shown}"
    if len(key) <= MAX_KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()


@dataclass(frozen=True)
class _Check:
    """One limit at claim time: its key field, its bound, and how much is used per key."""

    field: str | None
    bound: int
    used: Counter[str]

    def full(self, key: str) -> bool:
        return self.used[key] >= self.bound


def claim_type(engine: Engine, action_type: str, limits: Limits, *, worker: str, limit: int,
               lease_seconds: float, now: datetime) -> list[Claim]:
    """Claim due actions of one limited type, as many as its limits allow, up to ``limit``."""
    with engine.begin() as conn:
        driver = driver_for(conn)
        driver.lock_flow(conn, action_type)
        db_now = driver.time(now)
        rate, cap = limits.rate, limits.cap
        checks: list[_Check] = []
        if rate is not None:
            checks.append(_Check(rate.key, rate.count,
                                 _started_since(conn, action_type, driver.time(now, -rate.period))))
        if cap is not None:
            checks.append(_Check(cap.key, cap.count, _running(conn, action_type, cap.key)))
        if any(check.field is None and check.full("") for check in checks):
            return []  # the whole type is at its limit
        field = limits.key_field
        full = sorted({key for check in checks if field is not None and check.field == field
                       for key in check.used if check.full(key)})
        due = (select(actions.c.id, actions.c.flow_key,
                      cast(actions.c.payload, Text).label("payload"))
               .where(actions.c.action_type == action_type, IS_CLAIMABLE,
                      actions.c.not_before <= db_now))
        if full:  # a key enqueued under another field, or none, is checked below
            due = due.where(or_(actions.c.flow_key.is_(None), actions.c.flow_key.not_in(full)))
        chosen: dict[int, set[str]] = {}
        rekeyed: list[dict[str, Any]] = []
        for row in conn.execute(due.order_by(*CLAIM_ORDER).limit(CANDIDATES)):
            if len(chosen) >= limit:
                break
            payload = _payload(row.payload, row.id)
            keys = [key_of(check.field, payload) for check in checks]
            if field is not None and row.flow_key != (key := key_of(field, payload)):
                rekeyed.append({"b_id": row.id, "b_key": key})
            if any(check.full(key) for key, check in zip(keys, checks, strict=True)):
                continue
            for key, check in zip(keys, checks, strict=True):
                check.used[key] += 1
            chosen[row.id] = set(keys)
        if rekeyed:
            conn.execute(update(actions).where(actions.c.id == bindparam("b_id"))
                         .values(flow_key=bindparam("b_key")), rekeyed)
        if not chosen:
            return []
        rows = conn.execute(
            update(actions)
            .where(actions.c.id.in_(list(chosen)), IS_CLAIMABLE)
            .values(claimed(db_now, driver.time(now, timedelta(seconds=lease_seconds))))
            .returning(*CLAIM_COLUMNS),
            {"b_worker": worker},
        ).all()
        conn.execute(
            insert(starts).values(action_type=action_type, started_at=db_now),
            [{"flow_key": key, "action_id": row.id} for row in rows for key in chosen[row.id]])
        _forget_old_starts(conn, action_type,
                           driver.time(now, -rate.period) if rate is not None else db_now)
        return claims_from(conn, rows, worker, now)


def _started_since(conn: Connection, action_type: str,
                   since: ColumnElement[datetime]) -> Counter[str]:
    """Starts per key later than ``since``."""
    return Counter(dict(conn.execute(
        select(starts.c.flow_key, func.count())
        .where(starts.c.action_type == action_type, starts.c.started_at > since)
        .group_by(starts.c.flow_key)).all()))


def _running(conn: Connection, action_type: str, field: str | None) -> Counter[str]:
    """RUNNING actions per key under ``field``, read from their payloads rather than the
    keys they were started under: a cap an operator adds or re-keys while actions run
    counts those too (they are few: at most what the workers run at once)."""
    rows = conn.execute(select(actions.c.id, cast(actions.c.payload, Text).label("payload"))
                        .where(actions.c.action_type == action_type, IS_RUNNING))
    return Counter(key_of(field, _payload(row.payload, row.id)) for row in rows)


def _forget_old_starts(conn: Connection, action_type: str,
                       before: ColumnElement[datetime]) -> None:
    """Drop starts no limit will count again: out of the rate window, action not RUNNING."""
    running = select(actions.c.id).where(actions.c.action_type == action_type, IS_RUNNING)
    conn.execute(delete(starts).where(
        starts.c.action_type == action_type, starts.c.started_at <= before,
        starts.c.action_id.not_in(running.scalar_subquery())))


def _payload(text: str, action_id: int) -> Any:
    """The payload, to read a key from; an unreadable one counts under the missing key (its
    claim then fails it)."""
    try:
        return decode_object(text, f"payload of action {action_id}")
    except InvalidPayload:
        return None


@dataclass(frozen=True)
class LimitUse:
    """How much of one limit an action's key uses now, so an operator can see why an action
    of a limited type waits (``aol explain``)."""

    limit: RateLimit | Cap
    key: str
    used: int
    #: when a full rate limit lets this key start again; None for a cap or a limit not full
    frees_at: datetime | None

    @property
    def full(self) -> bool:
        return self.used >= self.limit.count


def use_of(conn: Connection, action_type: str, limits: Limits, payload: Any,
           now: datetime) -> list[LimitUse]:
    """The use of each of ``limits`` by the key ``payload`` counts under, counted as a
    claim counts it."""
    found = []
    if limits.rate is not None:
        rate = limits.rate
        key = key_of(rate.key, payload)
        window = driver_for(conn).time(now, -rate.period)
        times = list(conn.scalars(
            select(starts.c.started_at)
            .where(starts.c.action_type == action_type, starts.c.flow_key == key,
                   starts.c.started_at > window)
            .order_by(starts.c.started_at)))
        excess = len(times) - rate.count
        found.append(LimitUse(rate, key, len(times),
                              times[excess] + rate.period if excess >= 0 else None))
    if limits.cap is not None:
        key = key_of(limits.cap.key, payload)
        found.append(LimitUse(limits.cap, key,
                              _running(conn, action_type, limits.cap.key)[key], None))
    return found
