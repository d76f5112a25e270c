"""SQLite: one UPDATE ... RETURNING under an immediate write lock claims a batch.

Several worker processes can share one database file: ``BEGIN IMMEDIATE`` serialises the
claims, WAL lets readers continue meanwhile, and the busy timeout makes writers queue.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, update
from sqlalchemy.engine import Connection

from aol_core.drivers.base import CLAIM_COLUMNS, CLAIMED, DUE, Claim, Listener, run_claim
from aol_core.models import IS_RUNNING, Status
from aol_core.models import actions_table as actions
from aol_core.models import logs_table as logs

_INSERT_COLUMNS = ("action_type", "payload", "idempotency_key", "status", "priority", "attempts",
                   "max_attempts", "not_before", "fencing_token", "proof_mode", "created_at",
                   "updated_at")
_TIMES = ("not_before", "created_at", "updated_at")
_ROW = "(" + ", ".join("?" * len(_INSERT_COLUMNS)) + ")"
#: 12,000 bound values a statement, well under SQLite's limit of 32,766
_ROWS_PER_INSERT = 1000


def _insert_sql(rows: int) -> str:
    """Multi-row INSERT in SQL and plain values: SQLAlchemy's per-value type processing
    costs more than SQLite's own work here."""
    return (f"INSERT INTO aol_actions ({', '.join(_INSERT_COLUMNS)}) VALUES "
            + ", ".join([_ROW] * rows)
            + " ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, id")


def _stored_time(value: datetime) -> str:
    """A time as SQLAlchemy's SQLite dialect stores it (naive UTC text, microseconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
_SUCCEED = (
    update(actions)
    .where(
        actions.c.id == bindparam("b_id"),
        actions.c.fencing_token == bindparam("b_token"),
        IS_RUNNING,
    )
    .values(
        status=Status.SUCCESS.value, lease_owner=None, lease_expires_at=None, last_error=None,
        result=bindparam("b_result", type_=actions.c.result.type),
        updated_at=bindparam("b_now"), finished_at=bindparam("b_now"),
    )
)
_CLAIM = (
    update(actions)
    .where(actions.c.id.in_(DUE.scalar_subquery()))
    .values(CLAIMED)
    .returning(*CLAIM_COLUMNS)
)


class SQLiteDriver:
    name = "sqlite"

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
        return run_claim(engine, _CLAIM, worker=worker, action_types=action_types,
                         limit=limit, lease_seconds=lease_seconds, now=now)

    def insert_actions(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        times: dict[datetime, str] = {}
        inserted: dict[str, int] = {}
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            params: list[Any] = []
            chunk = rows[start : start + _ROWS_PER_INSERT]
            for row in chunk:
                for name in _INSERT_COLUMNS:
                    value = row[name]
                    if name in _TIMES:
                        value = times.get(value) or times.setdefault(value, _stored_time(value))
                    params.append(value)
            result = conn.exec_driver_sql(_insert_sql(len(chunk)), tuple(params))
            inserted.update((key, id_) for key, id_ in result)
        return inserted

    def succeed_many(
        self, conn: Connection, succeeded: Sequence[tuple[Claim, Any]], now: datetime
    ) -> int:
        rows = [{"b_id": claim.id, "b_token": claim.fencing_token, "b_result": result,
                 "b_now": now} for claim, result in succeeded]
        return conn.execute(_SUCCEED, rows).rowcount

    def insert_logs(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        conn.execute(insert(logs), list(rows))

    def refresh_statistics(self, conn: Connection) -> None:
        """SQLite plans the claim from the partial index alone; nothing to refresh."""

    def notify(self, conn: Connection) -> None:
        """SQLite has no notification channel; idle workers poll."""

    def lock_schema(self, conn: Connection) -> None:
        # The write lock up front, before the migration reads the schema it will change.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    def listen(self, engine: Engine, wake: threading.Event) -> Listener | None:
        return None
