"""Enqueue (single, bulk, idempotent) and every state change of an action.

Every change made on behalf of a claim matches the claim's fencing token and RUNNING status,
so a worker that lost its lease can neither overwrite the outcome of the worker that took
over nor commit its handler's writes.
"""

from __future__ import annotations

import difflib
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Engine,
    Text,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from aol_core import limits
from aol_core.config import Settings
from aol_core.context import LogEntry, PendingArtifact
from aol_core.drivers import Claim, Driver, driver_for
from aol_core.errors import (
    ActionNotFound,
    IdempotencyConflict,
    InvalidPayload,
    InvalidTransition,
    UnknownActionType,
)
from aol_core.flow import key_of as flow_key_of
from aol_core.models import (
    CLAIMABLE,
    FINISHED,
    IS_CLAIMABLE,
    IS_FINISHED,
    IS_RUNNING,
    Action,
    ExecutionLog,
    Status,
    workers_table,
)
from aol_core.models import actions_table as actions
from aol_core.models import artifacts_table as artifacts
from aol_core.models import control_table as control
from aol_core.models import logs_table as logs
from aol_core.models import pruned_keys_table as pruned_keys
from aol_core.plugins import ActionCatalog, installed_catalog
from aol_core.timeutil import require_aware, utcnow

log = logging.getLogger("aol.queue")

#: idempotency keys looked up per statement
KEY_CHUNK = 1000
#: actions deleted per transaction when pruning
PRUNE_CHUNK = 5000


@dataclass(frozen=True)
class NewAction:
    """One action to enqueue; the fields mirror :func:`enqueue`'s arguments."""

    action_type: str
    payload: dict[str, Any]
    idempotency_key: str | None = None
    not_before: datetime | None = None
    priority: int = 0
    max_attempts: int | None = None
    proof_mode: bool = False
    #: the slot of the schedule enqueuing it (``context.slot``)
    schedule_slot: datetime | None = None


class Enqueued(NamedTuple):
    """The outcome of an enqueue: ``created`` is False when the key already named this action.

    (A named tuple: bulk enqueue makes one per action.)"""

    id: int
    idempotency_key: str
    status: str
    created: bool


def enqueue(
    session: Session,
    action_type: str,
    payload: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    not_before: datetime | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    proof_mode: bool = False,
    force: bool = False,
) -> Enqueued:
    """Add an action inside ``session``'s transaction, so it commits or rolls back with it.

    Enqueuing a key that exists returns that action with ``created=False``; the same key
    with another type or payload raises :class:`IdempotencyConflict`. An action type no
    installed plugin (or registered worker) declares is refused unless ``force``.
    """
    item = NewAction(
        action_type, payload, idempotency_key, not_before, priority, max_attempts, proof_mode
    )
    return enqueue_many(session, [item], force=force)[0]


def enqueue_many(
    session: Session,
    items: Iterable[NewAction],
    *,
    force: bool = False,
    catalog: ActionCatalog | None = None,
    settings: Settings | None = None,
) -> list[Enqueued]:
    """Enqueue many actions in few statements; results are in the order of ``items``."""
    catalog = catalog if catalog is not None else installed_catalog()
    settings = settings if settings is not None else Settings.from_env()
    conn = session.connection()
    now = utcnow()
    items = list(items)
    rows = [_row(item, now, catalog, settings) for item in items]
    _refuse_unknown_types(conn, {row["action_type"] for row in rows}, catalog, force)

    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        first = wanted.setdefault(row["idempotency_key"], row)
        if first is not row:
            _check_same(first, row)
    driver = driver_for(conn)
    chosen = {item.idempotency_key for item in items if item.idempotency_key}
    inserted, existing, pruned = _place(conn, driver, wanted, chosen)
    for key, found in pruned.items():
        if found["action_type"] != wanted[key]["action_type"]:
            _check_same(found, wanted[key])
    for key, found in existing.items():
        _check_same(found, wanted[key])
    existing.update(pruned)
    if any(_due_now(wanted[key], now) for key in inserted):
        driver.notify(conn)

    results = []
    for row in rows:
        key = row["idempotency_key"]
        if key in inserted:
            results.append(Enqueued(inserted[key], key, Status.PENDING.value, True))
        else:
            found = existing[key]
            results.append(Enqueued(found["id"], key, found["status"], False))
    return results


def _row(
    item: NewAction, now: datetime, catalog: ActionCatalog, settings: Settings
) -> dict[str, Any]:
    limits.check_text(item.action_type, "action type", limits.MAX_ACTION_TYPE_CHARS)
    if item.idempotency_key is not None:
        limits.check_text(item.idempotency_key, "idempotency key", limits.MAX_KEY_CHARS)
    if not isinstance(item.payload, dict):
        raise InvalidPayload(
            f"payload for {item.action_type} must be a JSON object, "
            f"not {type(item.payload).__name__}"
        )
    payload = limits.encode_json(
        item.payload, f"payload for {item.action_type}",
        max_bytes=settings.max_payload_bytes, max_depth=settings.max_payload_depth,
    )
    limits.check_int32(item.priority, "priority")
    if item.max_attempts is not None:
        limits.check_int32(item.max_attempts, "max_attempts")
    spec = catalog.specs.get(item.action_type)
    if spec is not None:
        spec.validate(item.payload)
    max_attempts = item.max_attempts
    if max_attempts is None:
        spec_default = spec.max_attempts if spec is not None else None
        max_attempts = settings.max_attempts if spec_default is None else spec_default
    if max_attempts < 1:
        raise InvalidPayload(f"max_attempts must be at least 1, not {max_attempts}")
    # None: due at once, on the clock the driver keeps due times by
    not_before = None if item.not_before is None else require_aware(item.not_before, "not_before")
    key_field = spec.flow_key_field if spec is not None else None
    return {
        "action_type": item.action_type,
        "payload": payload,
        "idempotency_key": item.idempotency_key or new_key(),
        "status": Status.PENDING.value,
        "priority": item.priority,
        "attempts": 0,
        "max_attempts": max_attempts,
        "not_before": not_before,
        "fencing_token": 0,
        "proof_mode": bool(item.proof_mode),
        "flow_key": None if key_field is None else flow_key_of(key_field, item.payload),
        "schedule_slot": None if item.schedule_slot is None
        else require_aware(item.schedule_slot, "schedule_slot"),
        "created_at": now,
        "updated_at": now,
    }


def new_key() -> str:
    """A fresh idempotency key: 32 hex digits, 48 bits of milliseconds then 80 random bits
    (the layout of a UUIDv7). Keys made later sort later, so the unique index grows at its
    right edge instead of splitting pages all over: bulk enqueue stays fast as tables grow."""
    millis = time.time_ns() // 1_000_000
    return f"{millis:012x}{secrets.randbits(80):020x}"


def _refuse_unknown_types(
    conn: Connection, types: set[str], catalog: ActionCatalog, force: bool
) -> None:
    """Refuse types no plugin declares. With a broken plugin installed, any such type may be
    its own: enqueuing it would skip its payload schema and its max_attempts."""
    unknown = types - catalog.specs.keys()
    if not unknown:
        return
    broken = "; ".join(f"{p.label} failed to import ({p.error})" for p in catalog.broken)
    if broken and force:
        log.warning("enqueued %s unvalidated although plugin %s may own it (force)",
                    ", ".join(sorted(unknown)), broken)
    if force:
        return
    if broken:
        raise UnknownActionType(
            f"action type {', '.join(sorted(unknown))} is declared by no plugin that loaded, "
            f"and plugin {broken} may own it: its payload would go unvalidated; fix the "
            f"plugin, or {FORCE_HINT}"
        )
    advertised: set[str] = set()
    for worker_types in conn.execute(select(workers_table.c.action_types)).scalars():
        advertised.update(worker_types or ())
    unknown -= advertised
    if unknown:
        known = sorted(catalog.specs.keys() | advertised)
        close = [match for name in sorted(unknown)
                 for match in difflib.get_close_matches(name.upper(), known, n=1)]
        raise UnknownActionType(
            f"unknown action type {', '.join(sorted(unknown))}"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
            + f"; known types: {', '.join(known) or 'none (no plugin installed)'} "
            f"({FORCE_HINT})"
        )


#: how to enqueue a type AOL cannot check, from either side
FORCE_HINT = "enqueue it anyway with --force (aol enqueue) or force=True (Python)"


def _place(
    conn: Connection, driver: Driver, wanted: dict[str, dict[str, Any]], chosen: set[str]
) -> tuple[dict[str, int], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Insert the rows whose key is new; return ``(inserted {key: id}, existing actions,
    pruned actions)`` by key, accounting for every key of ``wanted``.

    Keys the caller chose (``chosen``) may name actions pruned already, which must not run
    again. A prune deletes an action and records its key in one transaction, which may
    commit at any moment of this one; so the pruned keys are read last, after the insert
    (which, on PostgreSQL, waits for a prune that deleted a row of the same key, and on
    SQLite holds the write lock from then on) and after the existing actions were read.
    A key the prune recorded meanwhile is found then, and its row inserted here is taken
    out again. A key found nowhere (its action pruned and its key forgotten meanwhile) is
    new again: the loop inserts it.
    """
    inserted: dict[str, int] = {}
    existing: dict[str, dict[str, Any]] = {}
    pruned: dict[str, dict[str, Any]] = {}
    placing = list(wanted)
    while placing:
        inserted.update(driver.insert_actions(conn, [wanted[key] for key in placing]))
        existing.update(_existing(conn, [key for key in placing if key not in inserted]))
        pruned.update(_pruned(conn, [key for key in placing if key in chosen
                                     and key not in existing]))
        recreated = [inserted.pop(key) for key in pruned if key in inserted]
        if recreated:
            conn.execute(delete(actions).where(actions.c.id.in_(recreated)))
        placing = [key for key in placing
                   if key not in inserted and key not in existing and key not in pruned]
    return inserted, existing, pruned


def _existing(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    columns = (actions.c.id, actions.c.idempotency_key, actions.c.action_type,
               cast(actions.c.payload, Text).label("payload"), actions.c.status)
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start : start + KEY_CHUNK]
        for row in conn.execute(select(*columns).where(actions.c.idempotency_key.in_(chunk))):
            found[row.idempotency_key] = {**row._mapping, "payload": _comparable(row.payload)}
    return found


def _comparable(stored: str) -> str:
    """A stored payload in the form :func:`_row` encodes one, or as stored if it cannot be
    decoded (then it equals no new payload)."""
    try:
        return _ENCODE(limits.decode_json(stored, "stored payload"))
    except (InvalidPayload, ValueError):
        return stored


#: stored payloads re-encoded as enqueue encodes new ones, for comparison (one encoder, built
#: once: json.dumps with options builds a new one per call)
_ENCODE = json.JSONEncoder(sort_keys=True).encode


def _pruned(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Keys of pruned actions among ``keys``, with the action's id, type and final status."""
    found: dict[str, dict[str, Any]] = {}
    columns = (pruned_keys.c.idempotency_key, pruned_keys.c.action_id.label("id"),
               pruned_keys.c.action_type, pruned_keys.c.status)
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start : start + KEY_CHUNK]
        for row in conn.execute(select(*columns).where(pruned_keys.c.idempotency_key.in_(chunk))):
            found[row.idempotency_key] = dict(row._mapping)
    return found


def _due_now(row: dict[str, Any], now: datetime) -> bool:
    return row["not_before"] is None or row["not_before"] <= now


def _check_same(existing: dict[str, Any], new: dict[str, Any]) -> None:
    """Both payloads are JSON text with sorted keys, so equal objects compare equal."""
    if existing["action_type"] != new["action_type"] or existing["payload"] != new["payload"]:
        raise IdempotencyConflict(
            f"idempotency key {new['idempotency_key']!r} already names a "
            f"{existing['action_type']} action with another payload"
            if existing["action_type"] == new["action_type"]
            else f"idempotency key {new['idempotency_key']!r} already names a "
            f"{existing['action_type']} action, not {new['action_type']}"
        )


# --- transitions of claimed actions (all fenced) -------------------------------------------


def _fenced(claim: Claim) -> Any:
    return (
        (actions.c.id == claim.id)
        & (actions.c.fencing_token == claim.fencing_token)
        & (actions.c.status == Status.RUNNING.value)
    )


def settle(
    conn: Connection,
    claim: Claim,
    status: Status,
    *,
    now: datetime,
    result: Any = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Move a claimed action out of RUNNING; False if the claim no longer holds the lease.

    ``retry_at`` is on the caller's clock, like ``now``: the action is due as long after the
    database's now as ``retry_at`` is after ``now``."""
    values: dict[str, Any] = {
        "status": status.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
        "last_error": error,
        "result": result,
    }
    if status.value in FINISHED:
        values["finished_at"] = now
    if retry_at is not None:
        values["not_before"] = driver_for(conn).time(now, retry_at - now)
    return conn.execute(update(actions).where(_fenced(claim)).values(**values)).rowcount == 1


def settle_successes(
    conn: Connection, succeeded: Sequence[tuple[Claim, Any]], now: datetime
) -> bool:
    """Mark many claims SUCCESS in one statement; False if any no longer holds its lease."""
    if not succeeded:
        return True
    return driver_for(conn).succeed_many(conn, succeeded, now) == len(succeeded)


def failure_status(claim: Claim, permanent: bool) -> Status:
    if permanent:
        return Status.FAILED
    return Status.DLQ if claim.attempt >= claim.max_attempts else Status.RETRY


def backoff_seconds(attempt: int, settings: Settings) -> float:
    """Exponential in the attempt number, capped, with jitter over the upper half."""
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def snooze_claim(conn: Connection, claim: Claim, until: datetime, now: datetime) -> Status | None:
    """Put a claimed action back to waiting until ``until`` and give back the attempt its
    claim counted; the status it waits in, or None if the claim no longer holds the lease."""
    status = Status.RETRY if claim.attempt > 1 else Status.PENDING
    statement = (
        update(actions).where(_fenced(claim)).values(
            status=status.value, attempts=actions.c.attempts - 1, not_before=until,
            lease_owner=None, lease_expires_at=None, started_at=None, updated_at=now,
        )
    )
    return status if conn.execute(statement).rowcount == 1 else None


def hold_claim(conn: Connection, claim: Claim, reason: str, now: datetime) -> bool:
    """Set a claimed action aside as HELD for a person; False if the claim lost its lease."""
    statement = (
        update(actions).where(_fenced(claim)).values(
            status=Status.HELD.value,
            last_error=limits.storable_text(f"held: {reason}", limits.MAX_ERROR_CHARS),
            lease_owner=None,
            lease_expires_at=None, updated_at=now,
        )
    )
    return conn.execute(statement).rowcount == 1


def release(engine: Engine, claims: Sequence[Claim], now: datetime) -> int:
    """Hand back claims whose handler never started: the attempt is not counted."""
    released = 0
    with engine.begin() as conn:
        for claim in claims:
            statement = (
                update(actions)
                .where(_fenced(claim))
                .values(
                    status=Status.RETRY.value if claim.attempt > 1 else Status.PENDING.value,
                    attempts=actions.c.attempts - 1,
                    lease_owner=None,
                    lease_expires_at=None,
                    started_at=None,
                    updated_at=now,
                )
            )
            released += conn.execute(statement).rowcount
    return released


def rescue_expired(
    engine: Engine, now: datetime, worker: str, settings: Settings
) -> list[tuple[int, str]]:
    """Return actions whose lease ran out to RETRY after the retry backoff (a crash is a
    failure too), or to DLQ when no attempts are left.

    Reads first, so an idle worker takes no write lock when nothing expired. Leases run out
    on the database's clock (see ``Driver.time``).
    """
    driver = driver_for(engine)
    expired = IS_RUNNING & (actions.c.lease_expires_at < driver.time(now))
    with engine.connect() as conn:
        found = conn.execute(
            select(actions.c.id, actions.c.fencing_token, actions.c.attempts).where(expired)
        ).all()
    if not found:
        return []
    out_of_attempts = actions.c.attempts >= actions.c.max_attempts
    rescued: list[Any] = []
    with engine.begin() as conn:
        for action in found:  # one statement each: each gets its own backoff
            backoff = timedelta(seconds=backoff_seconds(action.attempts, settings))
            statement = (
                update(actions)
                .where(actions.c.id == action.id,
                       actions.c.fencing_token == action.fencing_token, expired)
                .values(
                    status=case((out_of_attempts, Status.DLQ.value), else_=Status.RETRY.value),
                    finished_at=case((out_of_attempts, now), else_=None),
                    last_error=literal("lease expired: worker ")
                    + actions.c.lease_owner
                    + literal(" stopped renewing it during attempt ")
                    + actions.c.attempts.cast(actions.c.last_error.type),
                    lease_owner=None,
                    lease_expires_at=None,
                    not_before=case((out_of_attempts, actions.c.not_before),
                                    else_=driver.time(now, backoff)),
                    updated_at=now,
                )
                .returning(actions.c.id, actions.c.status, actions.c.attempts,
                           actions.c.last_error)
            )
            rescued.extend(conn.execute(statement))
        entries = [
            {
                "action_id": row.id,
                "attempt": row.attempts,
                "ts": now,
                "level": "ERROR" if row.status == Status.DLQ.value else "WARNING",
                "message": f"{row.last_error}; "
                + ("attempts used up, moved to DLQ" if row.status == Status.DLQ.value
                   else "will be retried"),
                "worker": worker,
            }
            for row in rescued
        ]
        if entries:
            conn.execute(insert(logs), entries)
    return [(row.id, row.status) for row in rescued]


def _claimed(claims: Sequence[Claim]) -> Any:
    """Rows still RUNNING under these claims' fencing tokens."""
    return IS_RUNNING & tuple_(actions.c.id, actions.c.fencing_token).in_(
        [(c.id, c.fencing_token) for c in claims])


def extend_leases(conn: Connection, worker: str, claims: Sequence[Claim], until: datetime) -> None:
    """Extend the leases of ``claims`` still held by ``worker``: ``until`` is on the caller's
    clock and counts from the database's now (see ``Driver.time``)."""
    if claims:
        now = utcnow()
        conn.execute(
            update(actions)
            .where(actions.c.lease_owner == worker, _claimed(claims))
            .values(lease_expires_at=driver_for(conn).time(now, until - now))
        )


def confirm_leases(conn: Connection, claims: Sequence[Claim]) -> set[tuple[int, int]]:
    """Lock the claims that still hold their lease, for the rest of ``conn``'s transaction,
    and return their ``(id, fencing_token)``: nobody can take or cancel them before the
    commit (PostgreSQL locks the rows, SQLite takes its write lock)."""
    return driver_for(conn).lock_claims(conn, claims) if claims else set()


def still_held(conn: Connection, claims: Sequence[Claim]) -> set[tuple[int, int]]:
    """Which claims still hold their action (a read: cancelled or taken-over ones do not)."""
    if not claims:
        return set()
    statement = select(actions.c.id, actions.c.fencing_token).where(_claimed(claims))
    return {(row.id, row.fencing_token) for row in conn.execute(statement)}


@dataclass(frozen=True)
class AttemptRecord:
    """What one attempt leaves behind: its log lines and the artifacts it recorded."""

    claim: Claim
    entries: Sequence[LogEntry]
    artifacts: Iterable[PendingArtifact] = ()


def write_records(
    conn: Connection, worker: str, records: Sequence[AttemptRecord], now: datetime
) -> None:
    """Persist attempts' log lines (one statement) and artifacts (a name keeps one copy)."""
    for record in records:
        for artifact in record.artifacts:
            conn.execute(delete(artifacts).where(
                artifacts.c.action_id == record.claim.id, artifacts.c.name == artifact.name))
            conn.execute(insert(artifacts).values(
                action_id=record.claim.id, name=artifact.name, media_type=artifact.media_type,
                content=artifact.content, sha256=artifact.sha256, created_at=now,
            ))
    rows = [
        {
            "action_id": record.claim.id, "attempt": record.claim.attempt, "ts": now,
            "level": e.level, "message": e.message, "worker": worker,
            "artifact_ref": e.artifact_ref, "artifact_sha256": e.artifact_sha256,
        }
        for record in records
        for e in record.entries
    ]
    if rows:
        driver_for(conn).insert_logs(conn, rows)


# --- operator commands ----------------------------------------------------------------------


def prune(
    engine: Engine,
    older_than: datetime,
    *,
    include_failed: bool = False,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Delete finished actions (with their logs and artifacts) that finished before
    ``older_than``: SUCCESS and CANCELLED, plus FAILED and DLQ if ``include_failed``.
    Their idempotency keys stay behind (in ``aol_pruned_keys``, until :func:`prune_keys`),
    so enqueuing one of them again does not run it again.

    Deletes in chunks, each its own short transaction, while ``keep_going()`` says so, and
    returns how many went. Walks the finished-history index oldest first, so each chunk
    reads about as many rows as it deletes however much history there is.
    """
    kept = () if include_failed else (Status.FAILED.value, Status.DLQ.value)
    doomed = IS_FINISHED & actions.c.status.in_(
        [status for status in FINISHED if status not in kept]
    ) & (actions.c.finished_at < older_than)
    key_columns = ("idempotency_key", "action_id", "action_type", "status", "finished_at")
    total = 0
    after: tuple[datetime, int] | None = None
    while True:
        # Each chunk starts where the last ended, so no chunk walks past the index entries
        # of rows deleted before it (PostgreSQL keeps them until VACUUM). Locked (PostgreSQL)
        # until the chunk's transaction ends, so the rows whose keys are kept are the rows
        # deleted; SQLite's write lock does the same.
        chunk = (
            select(actions.c.id, actions.c.finished_at)
            .where(doomed, true() if after is None
                   else tuple_(actions.c.finished_at, actions.c.id) > tuple_(*after))
            .order_by(actions.c.finished_at, actions.c.id)
            .limit(PRUNE_CHUNK)
            .with_for_update(skip_locked=True)
        )
        with engine.begin() as conn:
            rows = conn.execute(chunk).all()
            ids = [row.id for row in rows]
            if ids:
                these = driver_for(conn).one_of(actions.c.id, ids)
                conn.execute(insert(pruned_keys).from_select(key_columns, select(
                    actions.c.idempotency_key, actions.c.id, actions.c.action_type,
                    actions.c.status, actions.c.finished_at).where(these)))
                conn.execute(delete(actions).where(these))
        total += len(ids)
        if len(ids) < PRUNE_CHUNK or not keep_going():
            return total
        after = (rows[-1].finished_at, rows[-1].id)


def prune_keys(engine: Engine, older_than: datetime) -> int:
    """Forget the idempotency keys of pruned actions that finished before ``older_than``."""
    chunk = (
        select(pruned_keys.c.idempotency_key)
        .where(pruned_keys.c.finished_at < older_than)
        .limit(PRUNE_CHUNK)
        .scalar_subquery()
    )
    total = 0
    while True:
        with engine.begin() as conn:
            deleted = conn.execute(
                delete(pruned_keys).where(pruned_keys.c.idempotency_key.in_(chunk))
            ).rowcount
        total += deleted
        if deleted < PRUNE_CHUNK:
            return total


def take_pruning_turn(engine: Engine, period: timedelta, now: datetime) -> bool:
    """True for the one worker that claims this ``period``'s turn to prune.

    A conditional UPDATE of the control row: of workers asking at once, one matches it and
    the others find it already stamped. On the database's clock (see ``Driver.time``). Reads
    first, so a worker whose turn it is not takes no write lock.
    """
    driver = driver_for(engine)
    last = control.c.last_pruned_at
    turn = (control.c.id == 1) & (last.is_(None) | (last <= driver.time(now, -period)))
    with engine.connect() as conn:
        if conn.execute(select(control.c.id).where(turn)).first() is None:
            return False
    with engine.begin() as conn:
        return conn.execute(
            update(control).where(turn).values(last_pruned_at=driver.time(now))
        ).rowcount == 1



def load_action(session: Session, action_id: int) -> Action:
    action = session.get(Action, action_id)
    if action is None:
        raise ActionNotFound(f"no action with id {action_id}")
    return action


def _transition(
    session: Session, action_id: int, allowed: Sequence[str], values: dict[str, Any],
    refusal: str, message: str,
) -> Action:
    """Change an action only if its status is still one of ``allowed`` when the UPDATE runs,
    so an operator's command cannot overwrite what a worker did a moment before."""
    statement = (
        update(actions)
        .where(actions.c.id == action_id, actions.c.status.in_(allowed))
        .values(**values, updated_at=utcnow())
    )
    if session.connection().execute(statement).rowcount != 1:
        current = load_action(session, action_id)
        raise InvalidTransition(f"action {action_id} is {current.status}; {refusal}")
    action = session.get(Action, action_id, populate_existing=True)
    assert action is not None
    _operator_log(session, action, message)
    return action


def retry_action(session: Session, action_id: int) -> Action:
    """Make a FAILED, DLQ or CANCELLED action due now, with at least one attempt left."""
    return _transition(
        session, action_id, (Status.FAILED.value, Status.DLQ.value, Status.CANCELLED.value),
        {
            "status": case((actions.c.attempts > 0, Status.RETRY.value),
                           else_=Status.PENDING.value),
            "max_attempts": case((actions.c.max_attempts > actions.c.attempts,
                                  actions.c.max_attempts), else_=actions.c.attempts + 1),
            "not_before": driver_for(session.connection()).time(utcnow()),
            "finished_at": None,
        },
        "only FAILED, DLQ or CANCELLED can be retried",
        "retried by an operator",
    )


def cancel_action(session: Session, action_id: int) -> Action:
    """Cancel an unfinished action. A worker running it finds its lease gone: the running
    attempt's outcome is refused, its writes roll back and ``context.cancelled`` turns true."""
    return _transition(
        session, action_id, (*CLAIMABLE, Status.RUNNING.value),
        {"status": Status.CANCELLED.value, "lease_owner": None, "lease_expires_at": None,
         "finished_at": utcnow()},
        "only PENDING, RETRY or RUNNING can be cancelled", "cancelled by an operator",
    )


def fail_action(session: Session, action_id: int, error: str) -> Action:
    """Fail an unfinished action permanently: an operator's decision, no further attempts.
    A worker running it finds its lease gone and its outcome refused."""
    return _transition(
        session, action_id, (*CLAIMABLE, Status.RUNNING.value),
        {"status": Status.FAILED.value, "last_error": error, "lease_owner": None,
         "lease_expires_at": None, "finished_at": utcnow()},
        "only PENDING, RETRY or RUNNING can be failed", f"failed by an operator: {error}",
    )


def release_held(session: Session, action_id: int) -> Action:
    """Make a HELD action due now, with at least one attempt left: the person decided that
    running it again is safe."""
    return _transition(
        session, action_id, (Status.HELD.value,),
        {
            "status": case((actions.c.attempts > 0, Status.RETRY.value),
                           else_=Status.PENDING.value),
            "max_attempts": case((actions.c.max_attempts > actions.c.attempts,
                                  actions.c.max_attempts), else_=actions.c.attempts + 1),
            "not_before": utcnow(),
        },
        "only HELD actions can be released", "released by an operator",
    )


def resolve_held(session: Session, action_id: int, succeeded: bool, note: str | None) -> Action:
    """Record a person's finding about a HELD action: it did succeed, or it failed."""
    status = Status.SUCCESS if succeeded else Status.FAILED
    finding = f"resolved by an operator as {status.value}" + (f": {note}" if note else "")
    values: dict[str, Any] = {"status": status.value, "finished_at": utcnow()}
    if not succeeded:
        values["last_error"] = finding
    return _transition(session, action_id, (Status.HELD.value,), values,
                       "only HELD actions can be resolved", finding)


def _operator_log(session: Session, action: Action, message: str) -> None:
    session.add(
        ExecutionLog(
            action_id=action.id, attempt=action.attempts, ts=utcnow(), level="INFO",
            message=message, worker=None,
        )
    )


def has_due(conn: Connection, action_types: Sequence[str], now: datetime) -> bool:
    """A read-only look for claimable work, so idle workers poll without taking write locks."""
    return driver_for(conn).has_due(conn, action_types, now)


def waiting_not_due(
    conn: Connection, action_types: Sequence[str], now: datetime
) -> tuple[int, datetime | None]:
    """How many claimable actions of ``action_types`` are not due yet, and the earliest
    time one becomes due."""
    count, earliest = conn.execute(
        select(func.count(), func.min(actions.c.not_before)).where(
            IS_CLAIMABLE, actions.c.action_type.in_(action_types),
            actions.c.not_before > now)
    ).one()
    return int(count), earliest
