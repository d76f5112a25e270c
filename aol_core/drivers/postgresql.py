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

from aol_core.drivers.base import CLAIM_COLUMNS, CLAIMED, DUE, Claim, run_claim
from aol_core.models import actions_table as actions

CHANNEL = "aol_actions"
log = logging.getLogger("aol.worker")


_DUE = DUE.with_for_update(skip_locked=True).cte("due")
#: columns of a new action and their array types: rows travel as one array per column, so a
#: thousand actions are one small statement for the server to parse, not twelve thousand
#: parameters
_INSERT_COLUMNS = {
    "action_type": "varchar[]", "payload": "jsonb[]", "idempotency_key": "varchar[]",
    "status": "varchar[]", "priority": "integer[]", "attempts": "integer[]",
    "max_attempts": "integer[]", "not_before": "timestamptz[]", "fencing_token": "integer[]",
    "proof_mode": "boolean[]", "created_at": "timestamptz[]", "updated_at": "timestamptz[]",
}
_INSERT = text(
    f"INSERT INTO aol_actions ({', '.join(_INSERT_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind})" for name, kind in _INSERT_COLUMNS.items())
    + ") ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, id"
)
_SUCCEED = text(
    "UPDATE aol_actions AS a SET status = 'SUCCESS', lease_owner = NULL, "
    "lease_expires_at = NULL, last_error = NULL, result = v.result, updated_at = :now, "
    "finished_at = :now FROM unnest(CAST(:ids AS bigint[]), CAST(:tokens AS integer[]), "
    "CAST(:results AS jsonb[])) AS v(id, token, result) "
    "WHERE a.id = v.id AND a.fencing_token = v.token AND a.status = 'RUNNING'"
)
_LOG_COLUMNS = {
    "action_id": "bigint[]", "attempt": "integer[]", "ts": "timestamptz[]",
    "level": "varchar[]", "message": "text[]", "worker": "varchar[]",
    "artifact_ref": "varchar[]", "artifact_sha256": "varchar[]",
}
_INSERT_LOGS = text(
    f"INSERT INTO aol_execution_logs ({', '.join(_LOG_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {kind})" for name, kind in _LOG_COLUMNS.items()) + ")"
)
_CLAIM = (
    update(actions)
    .where(actions.c.id == _DUE.c.id)
    .values(CLAIMED)
    .returning(*CLAIM_COLUMNS)
)


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
        return {key: id_ for key, id_ in conn.execute(_INSERT, _columns(rows, _INSERT_COLUMNS))}

    def succeed_many(
        self, conn: Connection, succeeded: Sequence[tuple[Claim, Any]], now: datetime
    ) -> int:
        params = {
            "ids": [claim.id for claim, _ in succeeded],
            "tokens": [claim.fencing_token for claim, _ in succeeded],
            "results": [json.dumps(result) for _, result in succeeded],
            "now": now,
        }
        return conn.execute(_SUCCEED, params).rowcount

    def insert_logs(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        conn.execute(_INSERT_LOGS, _columns(rows, _LOG_COLUMNS))

    def refresh_statistics(self, conn: Connection) -> None:
        # After a bulk load the planner's row estimate is stale and it sorts the whole queue
        # for every claim instead of reading the claim index in order.
        conn.execute(text("ANALYZE aol_actions"))

    def notify(self, conn: Connection) -> None:
        # Delivered at commit; PostgreSQL folds identical notifications in one transaction.
        conn.execute(text(f"NOTIFY {CHANNEL}"))

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
        self._wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aol-listen", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                for _ in self._connection.notifies(timeout=0.1, stop_after=1):
                    self._wake.set()
        except Exception as exc:
            if not self._stopping.is_set():
                log.warning("LISTEN connection lost (%s); polling only", exc)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._connection.close()
