"""The driver interface: everything whose SQL differs between databases, and nothing else."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, Text, bindparam, cast, insert, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.expression import ColumnElement, Executable

from aol_core.errors import InvalidPayload
from aol_core.limits import decode_object
from aol_core.models import Status
from aol_core.models import actions_table as actions
from aol_core.models import logs_table as logs

log = logging.getLogger("aol.worker")

ZERO = timedelta(0)

#: columns a claim returns, in this order; the payload as text, decoded row by row, so one
#: row that cannot be decoded fails alone instead of failing every claim
CLAIM_COLUMNS = (
    actions.c.id,
    actions.c.action_type,
    cast(actions.c.payload, Text).label("payload"),
    actions.c.idempotency_key,
    actions.c.attempts,
    actions.c.max_attempts,
    actions.c.fencing_token,
    actions.c.proof_mode,
    actions.c.priority,
    actions.c.not_before,
    actions.c.schedule_slot,
)


#: claim order, which the claim index (action_type, priority DESC, not_before, id) gives
#: within one action type
CLAIM_ORDER = (actions.c.priority.desc(), actions.c.not_before, actions.c.id)


def claimed(now: ColumnElement[Any], expires: ColumnElement[Any]) -> dict[str, Any]:
    """What a claim sets, given the claim's time and its lease's end as SQL; the worker is
    bound as b_worker."""
    return {
        "status": Status.RUNNING.value,
        "attempts": actions.c.attempts + 1,
        "fencing_token": actions.c.fencing_token + 1,
        "lease_owner": bindparam("b_worker"),
        "lease_expires_at": expires,
        "started_at": now,
        "updated_at": now,
    }


def run_claim(
    engine: Engine,
    statement: Executable,
    *,
    worker: str,
    action_types: Sequence[str],
    limit: int,
    lease_seconds: float,
    now: datetime,
) -> list[Claim]:
    """Execute a driver's claim statement (built once, with :func:`claimed`) in claim order.

    Binds b_now and b_expires on the caller's clock, b_lease as the lease's length, for the
    statement to use whichever fits its database's clock. Rows that cannot be decoded are
    failed and the statement runs again, so an empty answer always means nothing was due
    (a burst worker stops on it) rather than that only poison rows were."""
    lease = timedelta(seconds=lease_seconds)
    params = {"b_now": now, "b_types": list(action_types), "b_limit": limit,
              "b_worker": worker, "b_expires": now + lease, "b_lease": lease}
    while True:  # rows that could not be decoded failed: claim again, or it looks like none
        with engine.begin() as conn:
            rows = list(conn.execute(statement, params))
            claims = claims_from(conn, rows, worker, now)
        if claims or not rows:
            return claims


def claims_from(conn: Connection, rows: Iterable[Any], worker: str,
                now: datetime) -> list[Claim]:
    """The claims for rows just claimed (:data:`CLAIM_COLUMNS`), in claim order; a row whose
    payload cannot be decoded fails instead."""
    claims = []
    for row in rows:
        try:
            payload = decode_object(row.payload, f"payload of action {row.id}")
        except InvalidPayload as exc:
            _fail_unreadable(conn, row, str(exc), worker, now)
            continue
        claims.append(Claim(row.id, row.action_type, payload, *row[3:]))
    return sorted(claims, key=lambda c: c.sort_key)


def _fail_unreadable(conn: Connection, row: Row[Any], reason: str, worker: str,
                     now: datetime) -> None:
    """Fail a claimed row whose payload cannot be decoded (written by hand or an older
    version): permanently, as no retry can read it, with the reason in its history."""
    error = f"{reason}; permanent failure, not retried"
    log.error("action %s: %s", row.id, error)
    conn.execute(
        update(actions)
        .where(actions.c.id == row.id, actions.c.fencing_token == row.fencing_token)
        .values(status=Status.FAILED.value, last_error=error, lease_owner=None,
                lease_expires_at=None, finished_at=now, updated_at=now)
    )
    conn.execute(insert(logs).values(action_id=row.id, attempt=row.attempts, ts=now,
                                     level="ERROR", message=error, worker=worker))


@dataclass(frozen=True)
class Claim:
    """An action this worker holds a lease on; ``fencing_token`` guards every later update."""

    id: int
    action_type: str
    payload: dict[str, Any]
    idempotency_key: str
    attempt: int
    max_attempts: int
    fencing_token: int
    proof_mode: bool
    priority: int
    not_before: datetime
    #: the slot of the schedule that enqueued it, None for other actions
    schedule_slot: datetime | None = None

    @property
    def sort_key(self) -> tuple[int, datetime, int]:
        """Claim order: higher priority first, then earliest not_before, then id."""
        return (-self.priority, self.not_before, self.id)


class Listener(Protocol):
    def stop(self) -> None: ...


class Driver(Protocol):
    """One implementation per database; ``tests/test_driver_conformance.py`` runs on each."""

    name: str

    def claim(
        self,
        engine: Engine,
        *,
        worker: str,
        action_types: Sequence[str],
        limit: int,
        lease_seconds: float,
        now: datetime,
    ) -> list[Claim]:
        """Atomically lease up to ``limit`` due actions of ``action_types`` to ``worker``.

        Each claimed row becomes RUNNING, counts an attempt, gets a new fencing token and a
        lease ending ``lease_seconds`` from now (see :meth:`time` for whose clock). Due
        means ``not_before`` is not after now. Result is in claim order.
        """
        ...

    def has_due(self, conn: Connection, action_types: Sequence[str], now: datetime) -> bool:
        """Whether :meth:`claim` would find work: a read, so idle workers take no locks."""
        ...

    def time(self, now: datetime, later: timedelta = ZERO) -> ColumnElement[datetime]:
        """``later`` after the current time, as SQL. Where workers on several machines share
        the database (PostgreSQL) it is the database's clock, so a worker's skewed clock
        cannot expire leases or run actions early; on SQLite, one machine, it is ``now``,
        the caller's."""
        ...

    def insert_actions(
        self, conn: Connection, rows: Sequence[dict[str, Any]]
    ) -> dict[str, int]:
        """Insert rows whose idempotency key is new; return ``{key: id}`` for those inserted.

        Each row holds every column of a new action, its ``payload`` already JSON text and
        its ``not_before`` None for "now" (see :meth:`time` for whose clock). Any
        number of rows: the driver splits them into statements as its database needs.
        """
        ...

    def succeed_many(
        self, conn: Connection, succeeded: Sequence[tuple[Claim, Any]], now: datetime
    ) -> int:
        """Mark claims SUCCESS with their results, fenced; return how many still held."""
        ...

    def insert_logs(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert execution-log rows."""
        ...

    def one_of(self, column: ColumnElement[int], ids: Sequence[int]) -> ColumnElement[bool]:
        """``column IN ids`` for thousands of ids, in the form the database reads fastest."""
        ...

    def estimated_actions(self, conn: Connection) -> int | None:
        """The planner's estimate of how many actions the table holds, None without one."""
        ...

    def follow_explicit_ids(self, conn: Connection, table: str) -> None:
        """After rows were inserted into ``table`` with their ``id`` given (adopting another
        system's rows): make the ids generated next follow the largest one."""
        ...

    def lock_claims(self, conn: Connection, claims: Sequence[Claim]) -> set[tuple[int, int]]:
        """Of ``claims``, those whose action is still RUNNING under their fencing token, as
        ``(id, fencing_token)``, locked so that no other transaction can change them until
        ``conn``'s transaction ends."""
        ...

    def lock_flow(self, conn: Connection, action_type: str) -> None:
        """Hold ``action_type``'s flow-control lock until ``conn``'s transaction ends, so
        claims of a limited type count and claim one after another on every machine."""
        ...

    def notify(self, conn: Connection) -> None:
        """Tell idle workers, when ``conn``'s transaction commits, that work arrived."""
        ...

    def listen(self, engine: Engine, wake: threading.Event,
               listen_url: str | None = None) -> Listener | None:
        """Set ``wake`` whenever :meth:`notify` fires elsewhere; None where polling must do.
        ``listen_url``: the database to listen on, where ``engine``'s URL cannot deliver
        notifications (a pooler in transaction mode); None: ``engine``'s URL."""
        ...

    def lock_schema(self, conn: Connection) -> None:
        """Hold the schema-change lock until ``conn``'s transaction ends, before any read:
        ``aol db upgrade`` run from several machines at once then runs one after another."""
        ...
