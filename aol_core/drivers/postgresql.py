"""PostgreSQL: ``FOR UPDATE SKIP LOCKED`` in a CTE claims a batch; LISTEN/NOTIFY wakes workers.

The CTE fixes the set of rows before the UPDATE, so a claim never takes more than its limit,
and concurrent workers skip each other's locked rows instead of waiting on them.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text, update
from sqlalchemy.engine import Connection

from aol_core.db import note_write
from aol_core.drivers.base import CLAIM_COLUMNS, CLAIMED, DUE, Claim, run_claim
from aol_core.models import actions_table as actions

CHANNEL = "aol_actions"
log = logging.getLogger("aol.worker")


_DUE = DUE.with_for_update(skip_locked=True).cte("due")
#: columns of a new action and their array types: rows travel as one array per column, so a
#: thousand actions are one small statement for the server to parse, not twelve thousand
#: parameters
# Many rows travel as one array per column, expanded by unnest(), and are sent in psycopg's
# binary format: a thousand actions are one short statement for the server to parse and no
# text escaping for the client.
_INSERT_COLUMNS = {
    "action_type": "varchar[]", "payload": "jsonb[]", "idempotency_key": "varchar[]",
    "status": "varchar[]", "priority": "integer[]", "attempts": "integer[]",
    "max_attempts": "integer[]", "not_before": "timestamptz[]", "fencing_token": "integer[]",
    "proof_mode": "boolean[]", "created_at": "timestamptz[]", "updated_at": "timestamptz[]",
}
_LOG_COLUMNS = {
    "action_id": "bigint[]", "attempt": "integer[]", "ts": "timestamptz[]",
    "level": "varchar[]", "message": "text[]", "worker": "varchar[]",
    "artifact_ref": "varchar[]", "artifact_sha256": "varchar[]",
}


def _unnest(columns: dict[str, str]) -> str:
    return ", ".join(f"CAST(%({name})s AS {kind})" for name, kind in columns.items())


_INSERT = (
    f"INSERT INTO aol_actions ({', '.join(_INSERT_COLUMNS)}) SELECT * FROM unnest("
    f"{_unnest(_INSERT_COLUMNS)}) ON CONFLICT (idempotency_key) DO NOTHING "
    "RETURNING idempotency_key, id"
)
_ROWS_PER_INSERT = 2000
_INSERT_LOGS = (
    f"INSERT INTO aol_execution_logs ({', '.join(_LOG_COLUMNS)}) SELECT * FROM unnest("
    f"{_unnest(_LOG_COLUMNS)})"
)
_SUCCEED = (
    "UPDATE aol_actions AS a SET status = 'SUCCESS', lease_owner = NULL, "
    "lease_expires_at = NULL, last_error = NULL, result = v.result, updated_at = %(now)s, "
    "finished_at = %(now)s FROM unnest(CAST(%(ids)s AS bigint[]), "
    "CAST(%(tokens)s AS integer[]), CAST(%(results)s AS jsonb[])) AS v(id, token, result) "
    "WHERE a.id = v.id AND a.fencing_token = v.token AND a.status = 'RUNNING'"
)


def _binary(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """Execute on the transaction's own psycopg connection, with binary parameters (a write,
    counted like those that go through SQLAlchemy)."""
    note_write(conn)
    cursor = conn.connection.driver_connection.cursor(binary=True)  # type: ignore[union-attr]
    cursor.execute(sql, params)
    return cursor


_CLAIM = (
    update(actions)
    .where(actions.c.id == _DUE.c.id)
    .values(CLAIMED)
    .returning(*CLAIM_COLUMNS)
)

#: the advisory lock ``aol db upgrade`` holds ("AOLSCHM" in ASCII)
SCHEMA_LOCK_KEY = 0x414F4C5343484D


class PostgreSQLDriver:
    name = "postgresql"

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
        # Pipelined: the server inserts one chunk while psycopg encodes the next.
        note_write(conn)
        psycopg_conn = conn.connection.driver_connection
        cursors = []
        with psycopg_conn.pipeline():  # type: ignore[union-attr]
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                cursor = psycopg_conn.cursor(binary=True)  # type: ignore[union-attr]
                chunk = rows[start : start + _ROWS_PER_INSERT]
                cursor.execute(_INSERT, _columns(chunk, _INSERT_COLUMNS))
                cursors.append(cursor)
        inserted: dict[str, int] = {}
        for cursor in cursors:
            inserted.update((key, id_) for key, id_ in cursor.fetchall())
            cursor.close()
        return inserted

    def succeed_many(
        self, conn: Connection, succeeded: Sequence[tuple[Claim, Any]], now: datetime
    ) -> int:
        params = {
            "ids": [claim.id for claim, _ in succeeded],
            "tokens": [claim.fencing_token for claim, _ in succeeded],
            "results": [json.dumps(result) for _, result in succeeded],
            "now": now,
        }
        with _binary(conn, _SUCCEED, params) as cursor:
            return int(cursor.rowcount)

    def insert_logs(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        _binary(conn, _INSERT_LOGS, _columns(rows, _LOG_COLUMNS)).close()

    def refresh_statistics(self, conn: Connection) -> None:
        # After a bulk load the planner's row estimate is stale and it sorts the whole queue
        # for every claim instead of reading the claim index in order.
        conn.execute(text("ANALYZE aol_actions"))

    def notify(self, conn: Connection) -> None:
        # Delivered at commit; PostgreSQL folds identical notifications in one transaction.
        conn.execute(text(f"NOTIFY {CHANNEL}"))

    def lock_schema(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})

    def listen(self, engine: Engine, wake: threading.Event) -> PgListener | None:
        try:
            return PgListener(engine, wake)
        except Exception as exc:  # e.g. PgBouncer in transaction mode refuses LISTEN
            log.warning("LISTEN unavailable (%s); falling back to polling", exc)
            return None


def _columns(rows: Sequence[dict[str, Any]], names: Iterable[str]) -> dict[str, list[Any]]:
    """Rows as one list per column, for ``unnest``."""
    return {name: [row[name] for row in rows] for name in names}


class PgListener:
    """A thread holding one LISTEN connection that sets ``wake`` on each notification."""

    def __init__(self, engine: Engine, wake: threading.Event) -> None:
        import psycopg

        conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connection = psycopg.connect(conninfo, autocommit=True)
        self._connection.execute(f"LISTEN {CHANNEL}")
        self._engine = engine
        self._wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aol-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                # Blocks without using the CPU; stop() sends a notification to end it early.
                for _ in self._connection.notifies(timeout=10, stop_after=1):
                    self._wake.set()
        except Exception as exc:
            if not self._stopping.is_set():
                log.warning("LISTEN connection lost (%s); polling only", exc)

    def stop(self) -> None:
        self._stopping.set()
        try:
            with self._engine.begin() as conn:
                conn.execute(text(f"NOTIFY {CHANNEL}"))
        except Exception as exc:  # the thread then ends at its next timeout
            log.debug("could not wake the LISTEN thread (%s)", exc)
        self._thread.join(timeout=2)
        self._connection.close()
