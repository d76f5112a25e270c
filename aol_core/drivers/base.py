"""The driver interface: everything whose SQL differs between databases, and nothing else."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable

from aol_core.models import IS_CLAIMABLE, Status
from aol_core.models import actions_table as actions

#: columns a claim returns, in this order
CLAIM_COLUMNS = (
    actions.c.id,
    actions.c.action_type,
    actions.c.payload,
    actions.c.idempotency_key,
    actions.c.attempts,
    actions.c.max_attempts,
    actions.c.fencing_token,
    actions.c.proof_mode,
    actions.c.priority,
    actions.c.not_before,
)


#: which actions are due for a claim; bound as b_now, b_types and b_limit
DUE = (
    select(actions.c.id)
    .where(
        IS_CLAIMABLE,
        actions.c.not_before <= bindparam("b_now"),
        actions.c.action_type.in_(bindparam("b_types", expanding=True)),
    )
    .order_by(actions.c.priority.desc(), actions.c.not_before, actions.c.id)
    .limit(bindparam("b_limit"))
)

#: what a claim sets; bound as b_worker, b_expires and b_now
CLAIMED = {
    "status": Status.RUNNING.value,
    "attempts": actions.c.attempts + 1,
    "fencing_token": actions.c.fencing_token + 1,
    "lease_owner": bindparam("b_worker"),
    "lease_expires_at": bindparam("b_expires"),
    "started_at": bindparam("b_now"),
    "updated_at": bindparam("b_now"),
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
    """Execute a driver's claim statement (built once, from DUE and CLAIMED) in claim order."""
    params = {"b_now": now, "b_types": list(action_types), "b_limit": limit,
              "b_worker": worker, "b_expires": now + timedelta(seconds=lease_seconds)}
    with engine.begin() as conn:
        claims = [Claim(*row) for row in conn.execute(statement, params)]
    return sorted(claims, key=lambda c: c.sort_key)


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
        lease ending ``lease_seconds`` from ``now``. Result is in claim order.
        """
        ...

    def insert_actions(
        self, conn: Connection, rows: Sequence[dict[str, Any]]
    ) -> dict[str, int]:
        """Insert rows whose idempotency key is new; return ``{key: id}`` for those inserted.

        Each row holds every column of a new action, its ``payload`` already JSON text. Any
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

    def refresh_statistics(self, conn: Connection) -> None:
        """After a bulk enqueue: let the query planner see how many actions wait."""
        ...

    def notify(self, conn: Connection) -> None:
        """Tell idle workers, when ``conn``'s transaction commits, that work arrived."""
        ...

    def listen(self, engine: Engine, wake: threading.Event) -> Listener | None:
        """Set ``wake`` whenever :meth:`notify` fires elsewhere; None where polling must do."""
        ...

    def lock_schema(self, conn: Connection) -> None:
        """Hold the schema-change lock until ``conn``'s transaction ends, before any read:
        ``aol db upgrade`` run from several machines at once then runs one after another."""
        ...
