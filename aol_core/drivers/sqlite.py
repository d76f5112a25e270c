"""SQLite: one UPDATE ... RETURNING under an immediate write lock claims a batch.

Several worker processes can share one database file: ``BEGIN IMMEDIATE`` serialises the
claims, WAL lets readers continue meanwhile, and the busy timeout makes writers queue.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from aol_core.drivers.base import (
    CLAIM_COLUMNS,
    CLAIM_ORDER,
    ZERO,
    Claim,
    Listener,
    claimed,
    run_claim,
)
from aol_core.models import IS_CLAIMABLE, IS_RUNNING, Status, UTCDateTime
from aol_core.models import actions_table as actions
from aol_core.models import logs_table as logs

_INSERT_COLUMNS = ("action_type", "payload", "idempotency_key", "status", "priority", "attempts",
                   "max_attempts", "not_before", "fencing_token", "proof_mode", "flow_key",
                   "schedule_slot", "created_at", "updated_at")
_TIMES = ("not_before", "schedule_slot", "created_at", "updated_at")
_ROW = "(" + ", ".join("?" * len(_INSERT_COLUMNS)) + ")"
#: 14,000 bound values a statement, well under SQLite's limit of 32,766
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
#: due actions in claim order; bound as b_now, b_types and b_limit. SQLite walks the claim
#: index once per type and stops each walk when the limit is met.
_DUE = (
    select(actions.c.id)
    .where(
        IS_CLAIMABLE,
        actions.c.not_before <= bindparam("b_now"),
        actions.c.action_type.in_(bindparam("b_types", expanding=True)),
    )
    .order_by(*CLAIM_ORDER)
    .limit(bindparam("b_limit"))
)
#: the RUNNING actions among a JSON array of ids, with their fencing tokens
_RUNNING_AMONG = ("SELECT id, fencing_token FROM aol_actions WHERE status = 'RUNNING' "
                  "AND id IN (SELECT value FROM json_each(?))")
_CLAIM = (
    update(actions)
    .where(actions.c.id.in_(_DUE.scalar_subquery()))
    .values(claimed(bindparam("b_now"), bindparam("b_expires")))
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

    def has_due(self, conn: Connection, action_types: Sequence[str], now: datetime) -> bool:
        params = {"b_now": now, "b_types": list(action_types), "b_limit": 1}
        return conn.execute(_DUE, params).first() is not None

    def time(self, now: datetime, later: timedelta = ZERO) -> ColumnElement[datetime]:
        return literal(now + later, UTCDateTime())

    def lock_flow(self, conn: Connection, action_type: str) -> None:
        # One write lock for the whole database: taken up front, it serialises the claims.
        _take_write_lock(conn)

    def insert_actions(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        times: dict[datetime, str] = {}
        inserted: dict[str, int] = {}
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            params: list[Any] = []
            chunk = rows[start : start + _ROWS_PER_INSERT]
            for row in chunk:
                for name in _INSERT_COLUMNS:
                    value = row[name]
                    if value is None and name == "not_before":  # now: this machine's clock
                        value = row["created_at"]
                    if name in _TIMES and value is not None:
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

    def one_of(self, column: ColumnElement[int], ids: Sequence[int]) -> ColumnElement[bool]:
        return column.in_(ids)

    def estimated_actions(self, conn: Connection) -> int | None:
        """SQLite keeps no running estimate (only ``ANALYZE`` writes one)."""
        return None

    def follow_explicit_ids(self, conn: Connection, table: str) -> None:
        """SQLite gives a new row the largest rowid plus one already."""

    def lock_claims(self, conn: Connection, claims: Sequence[Claim]) -> set[tuple[int, int]]:
        # SQLite locks the whole database: its write lock, taken before the read, holds them
        _take_write_lock(conn)
        ids = json.dumps([claim.id for claim in claims])
        found = {(id_, token) for id_, token in conn.exec_driver_sql(_RUNNING_AMONG, (ids,))}
        return {(c.id, c.fencing_token) for c in claims} & found

    def notify(self, conn: Connection) -> None:
        """SQLite has no notification channel; idle workers poll."""

    def lock_schema(self, conn: Connection) -> None:
        # The write lock up front, before the migration reads the schema it will change.
        _take_write_lock(conn)

    def listen(self, engine: Engine, wake: threading.Event,
               listen_url: str | None = None) -> Listener | None:
        return None


def _take_write_lock(conn: Connection) -> None:
    """Begin ``conn``'s transaction with SQLite's write lock (connections of
    ``aol_core.create_engine`` only: they keep other connections out of the way)."""
    conn.connection.driver_connection.begin_writing()  # type: ignore[union-attr]
