"""Enqueue (single, bulk, idempotent) and every state change of an action.

Every change made on behalf of a claim matches the claim's fencing token and RUNNING status,
so a worker that lost its lease can neither overwrite the outcome of the worker that took
over nor commit its handler's writes.
"""

from __future__ import annotations

import difflib
import json
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, case, delete, insert, literal, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from aol_core.config import Settings
from aol_core.context import LogEntry, PendingArtifact
from aol_core.drivers import Claim, driver_for
from aol_core.drivers.base import DUE
from aol_core.errors import (
    ActionNotFound,
    IdempotencyConflict,
    InvalidPayload,
    InvalidTransition,
    UnknownActionType,
)
from aol_core.models import (
    CLAIMABLE,
    FINISHED,
    IS_RUNNING,
    Action,
    ExecutionLog,
    Status,
    workers_table,
)
from aol_core.models import actions_table as actions
from aol_core.models import artifacts_table as artifacts
from aol_core.models import logs_table as logs
from aol_core.plugins import ActionCatalog, installed_catalog
from aol_core.timeutil import require_aware, utcnow

#: idempotency keys looked up per statement
KEY_CHUNK = 1000
#: actions deleted per transaction when pruning
PRUNE_CHUNK = 5000
#: a bulk enqueue this large refreshes the planner's statistics (PostgreSQL)
REFRESH_STATISTICS_AFTER = 10_000


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
    rows = [_row(item, now, catalog, settings) for item in items]
    _refuse_unknown_types(conn, {row["action_type"] for row in rows}, catalog, force)

    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        first = wanted.setdefault(row["idempotency_key"], row)
        if first is not row:
            _check_same(first, row)
    driver = driver_for(conn)
    inserted = driver.insert_actions(conn, list(wanted.values()))
    if len(inserted) >= REFRESH_STATISTICS_AFTER:
        driver.refresh_statistics(conn)
    existing = _existing(conn, [key for key in wanted if key not in inserted])
    for key, found in existing.items():
        _check_same(found, wanted[key])
    if any(wanted[key]["not_before"] <= now for key in inserted):
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


#: payloads as JSON text with sorted keys, so equal objects encode equally (one encoder,
#: built once: json.dumps with options builds a new one per call)
_ENCODE = json.JSONEncoder(sort_keys=True).encode


def _row(
    item: NewAction, now: datetime, catalog: ActionCatalog, settings: Settings
) -> dict[str, Any]:
    if not isinstance(item.payload, dict):
        raise InvalidPayload(
            f"payload for {item.action_type} must be a JSON object, "
            f"not {type(item.payload).__name__}"
        )
    try:
        payload = _ENCODE(item.payload)
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"payload for {item.action_type} is not JSON: {exc}") from None
    spec = catalog.specs.get(item.action_type)
    if spec is not None:
        spec.validate(item.payload)
    max_attempts = item.max_attempts
    if max_attempts is None:
        spec_default = spec.max_attempts if spec is not None else None
        max_attempts = settings.max_attempts if spec_default is None else spec_default
    if max_attempts < 1:
        raise InvalidPayload(f"max_attempts must be at least 1, not {max_attempts}")
    not_before = now if item.not_before is None else require_aware(item.not_before, "not_before")
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
    unknown = types - catalog.specs.keys()
    if not unknown or force:
        return
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
            "(--force, or force=True, enqueues it anyway)"
        )


def _existing(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    columns = (actions.c.id, actions.c.idempotency_key, actions.c.action_type,
               actions.c.payload, actions.c.status)
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start : start + KEY_CHUNK]
        for row in conn.execute(select(*columns).where(actions.c.idempotency_key.in_(chunk))):
            found[row.idempotency_key] = {**row._mapping, "payload": _ENCODE(row.payload)}
    return found


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
    """Move a claimed action out of RUNNING; False if the claim no longer holds the lease."""
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
        values["not_before"] = retry_at
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


def rescue_expired(engine: Engine, now: datetime, worker: str) -> list[tuple[int, str]]:
    """Return actions whose lease ran out to RETRY, or DLQ when no attempts are left.

    Reads first, so an idle worker takes no write lock when nothing expired.
    """
    expired = IS_RUNNING & (actions.c.lease_expires_at < now)
    with engine.connect() as conn:
        if conn.execute(select(actions.c.id).where(expired).limit(1)).first() is None:
            return []
    out_of_attempts = actions.c.attempts >= actions.c.max_attempts
    statement = (
        update(actions)
        .where(expired)
        .values(
            status=case((out_of_attempts, Status.DLQ.value), else_=Status.RETRY.value),
            finished_at=case((out_of_attempts, now), else_=None),
            last_error=literal("lease expired: worker ")
            + actions.c.lease_owner
            + literal(" stopped renewing it during attempt ")
            + actions.c.attempts.cast(actions.c.last_error.type),
            lease_owner=None,
            lease_expires_at=None,
            not_before=now,
            updated_at=now,
        )
        .returning(actions.c.id, actions.c.status, actions.c.attempts, actions.c.last_error)
    )
    with engine.begin() as conn:
        rescued = list(conn.execute(statement))
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


def extend_leases(conn: Connection, worker: str, claims: Sequence[Claim], until: datetime) -> None:
    if claims:
        conn.execute(
            update(actions)
            .where(
                actions.c.lease_owner == worker,
                IS_RUNNING,
                tuple_(actions.c.id, actions.c.fencing_token).in_(
                    [(c.id, c.fencing_token) for c in claims]
                ),
            )
            .values(lease_expires_at=until)
        )


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

    Deletes in chunks, each its own short transaction, while ``keep_going()`` says so, and
    returns how many went.
    """
    kept = () if include_failed else (Status.FAILED.value, Status.DLQ.value)
    statuses = [status for status in FINISHED if status not in kept]
    doomed = (
        select(actions.c.id)
        .where(actions.c.status.in_(statuses), actions.c.finished_at < older_than)
        .limit(PRUNE_CHUNK)
    )
    total = 0
    while True:
        with engine.begin() as conn:
            deleted = conn.execute(
                delete(actions).where(actions.c.id.in_(doomed.scalar_subquery()))
            ).rowcount
        total += deleted
        if deleted < PRUNE_CHUNK or not keep_going():
            return total



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
            "not_before": utcnow(),
            "finished_at": None,
        },
        "only FAILED, DLQ or CANCELLED can be retried",
        "retried by an operator",
    )


def cancel_action(session: Session, action_id: int) -> Action:
    """Cancel an action that is not running and not finished."""
    return _transition(
        session, action_id, CLAIMABLE,
        {"status": Status.CANCELLED.value, "finished_at": utcnow()},
        "only PENDING or RETRY can be cancelled", "cancelled by an operator",
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


def _operator_log(session: Session, action: Action, message: str) -> None:
    session.add(
        ExecutionLog(
            action_id=action.id, attempt=action.attempts, ts=utcnow(), level="INFO",
            message=message, worker=None,
        )
    )


def has_due(conn: Connection, action_types: Sequence[str], now: datetime) -> bool:
    """A read-only look for claimable work, so idle workers poll without taking write locks."""
    params = {"b_now": now, "b_types": list(action_types), "b_limit": 1}
    return conn.execute(DUE, params).first() is not None
