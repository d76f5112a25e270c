"""PostgreSQL: ``FOR UPDATE SKIP LOCKED`` in a CTE claims a batch; LISTEN/NOTIFY wakes workers.

The CTE fixes the set of rows before the UPDATE, so a claim never takes more than its limit,
and concurrent workers skip each other's locked rows instead of waiting on them. It walks the
claim index once per action type (a LATERAL join over the worker's types), so the plan is an
index walk whatever the planner's statistics say and a backlog of other types costs nothing.
Due times and leases are on the database's clock (``statement_timestamp()``), so workers
whose clocks disagree still agree on what is due and which leases ran out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Engine,
    Executable,
    Interval,
    String,
    any_,
    bindparam,
    exists,
    func,
    literal,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from aol_core.db import parse_url
from aol_core.drivers.base import CLAIM_COLUMNS, CLAIM_ORDER, ZERO, Claim, claimed, run_claim
from aol_core.models import IS_CLAIMABLE, UTCDateTime
from aol_core.models import actions_table as actions
from aol_core.timeutil import clock_is_fixed

if TYPE_CHECKING:  # psycopg is optional: SQLite-only installations go without it
    import psycopg

CHANNEL = "aol_actions"
log = logging.getLogger("aol.worker")

#: the database's clock: when the statement arrived (stable within it, so indexes serve
#: comparisons with it, and not held back by a long transaction as now() is)
_DB_NOW = func.statement_timestamp(type_=UTCDateTime())
#: the caller's clock, bound as b_now: used only while the test kit's fixed clock is installed,
#: so a test that moves time moves it for due times and leases too
_CALLER_NOW = bindparam("b_now", type_=UTCDateTime())
#: the worker's action types, one row each, bound as b_types
_TYPES = (
    func.unnest(bindparam("b_types", type_=ARRAY(String())))
    .table_valued("action_type")
    .render_derived(name="t")
)


def _is_due(now: ColumnElement[datetime]) -> ColumnElement[bool]:
    return (actions.c.action_type == _TYPES.c.action_type) & IS_CLAIMABLE & (
        actions.c.not_before <= now
    )


def _claim_statement(now: ColumnElement[datetime]) -> Executable:
    """Per type, the first b_limit due actions in claim order, locked; then the first b_limit
    of those, claimed. Locks up to b_limit per type for the claim's short transaction."""
    per_type = (
        select(actions.c.id, actions.c.priority, actions.c.not_before)
        .where(_is_due(now))
        .order_by(*CLAIM_ORDER)
        .limit(bindparam("b_limit"))
        .with_for_update(skip_locked=True)
        .lateral("d")
    )
    due = (
        select(per_type.c.id)
        .select_from(_TYPES)
        .join(per_type, true())
        .order_by(per_type.c.priority.desc(), per_type.c.not_before, per_type.c.id)
        .limit(bindparam("b_limit"))
        .cte("due")
    )
    return (
        update(actions)
        .where(actions.c.id == due.c.id)
        .values(claimed(now, now + bindparam("b_lease", type_=Interval())))
        .returning(*CLAIM_COLUMNS)
    )


def _has_due_statement(now: ColumnElement[datetime]) -> Executable:
    return select(literal(1)).select_from(_TYPES).where(exists().where(_is_due(now))).limit(1)


#: statements built once per clock, keyed by "is the test kit's fixed clock installed"
_CLAIM = {False: _claim_statement(_DB_NOW), True: _claim_statement(_CALLER_NOW)}
_HAS_DUE = {False: _has_due_statement(_DB_NOW), True: _has_due_statement(_CALLER_NOW)}
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
    "proof_mode": "boolean[]", "flow_key": "varchar[]", "schedule_slot": "timestamptz[]",
    "created_at": "timestamptz[]", "updated_at": "timestamptz[]",
}
_LOG_COLUMNS = {
    "action_id": "bigint[]", "attempt": "integer[]", "ts": "timestamptz[]",
    "level": "varchar[]", "message": "text[]", "worker": "varchar[]",
    "artifact_ref": "varchar[]", "artifact_sha256": "varchar[]",
}


def _unnest(columns: dict[str, str]) -> str:
    return ", ".join(f"CAST(%({name})s AS {kind})" for name, kind in columns.items())


#: a missing not_before is the database's now
_INSERT = (
    f"INSERT INTO aol_actions ({', '.join(_INSERT_COLUMNS)}) SELECT "
    + ", ".join("coalesce(not_before, statement_timestamp())" if name == "not_before" else name
                for name in _INSERT_COLUMNS)
    + f" FROM unnest({_unnest(_INSERT_COLUMNS)}) AS v({', '.join(_INSERT_COLUMNS)})"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key, id"
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

_LOCK_CLAIMS = (
    "SELECT id, fencing_token FROM aol_actions WHERE status = 'RUNNING' AND "
    "(id, fencing_token) IN (SELECT * FROM unnest(CAST(%(ids)s AS bigint[]), "
    "CAST(%(tokens)s AS integer[]))) FOR UPDATE"
)


def _binary(conn: Connection, sql: str, params: dict[str, Any]) -> Any:
    """Execute on the transaction's own psycopg connection, with binary parameters."""
    cursor = conn.connection.driver_connection.cursor(binary=True)  # type: ignore[union-attr]
    cursor.execute(sql, params)
    return cursor


#: the advisory lock ``aol db upgrade`` holds ("AOLSCHM" in ASCII)
SCHEMA_LOCK_KEY = 0x414F4C5343484D
#: the first half of the two-part advisory lock on one limited action type ("AOLF")
FLOW_LOCK_SPACE = 0x414F4C46


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
        return run_claim(engine, _CLAIM[clock_is_fixed()], worker=worker, action_types=action_types,
                         limit=limit, lease_seconds=lease_seconds, now=now)

    def has_due(self, conn: Connection, action_types: Sequence[str], now: datetime) -> bool:
        params = {"b_types": list(action_types), "b_now": now}
        return conn.execute(_HAS_DUE[clock_is_fixed()], params).first() is not None

    def time(self, now: datetime, later: timedelta = ZERO) -> ColumnElement[datetime]:
        if clock_is_fixed():
            return literal(now + later, UTCDateTime())
        if not later:
            return _DB_NOW
        return type_coerce(_DB_NOW + literal(later, Interval()), UTCDateTime())

    def insert_actions(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        # Pipelined: the server inserts one chunk while psycopg encodes the next.
        psycopg_conn = conn.connection.driver_connection
        if clock_is_fixed():  # "now" is the fixed clock's, not the database's
            rows = [row if row["not_before"] else {**row, "not_before": row["created_at"]}
                    for row in rows]
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

    def one_of(self, column: ColumnElement[int], ids: Sequence[int]) -> ColumnElement[bool]:
        # one array parameter: thousands of separate parameters cost more than the work
        return column == any_(literal(list(ids), ARRAY(BigInteger())))

    def estimated_actions(self, conn: Connection) -> int | None:
        # Kept by VACUUM and ANALYZE (autovacuum); -1 until the table was first looked at.
        rows = conn.scalar(text(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = 'aol_actions'::regclass"))
        return None if rows is None or rows < 0 else int(rows)

    def follow_explicit_ids(self, conn: Connection, table: str) -> None:
        # Explicit ids bypass the id column's sequence, which would hand them out again.
        quoted = conn.dialect.identifier_preparer.quote(table)
        conn.execute(
            text(f"SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                 f"(SELECT coalesce(max(id), 0) + 1 FROM {quoted}), false)"),
            {"table": table},
        )

    def lock_claims(self, conn: Connection, claims: Sequence[Claim]) -> set[tuple[int, int]]:
        params = {"ids": [c.id for c in claims], "tokens": [c.fencing_token for c in claims]}
        with _binary(conn, _LOCK_CLAIMS, params) as cursor:
            return {(id_, token) for id_, token in cursor.fetchall()}

    def lock_flow(self, conn: Connection, action_type: str) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(:type))"),
                     {"space": FLOW_LOCK_SPACE, "type": action_type})

    def notify(self, conn: Connection) -> None:
        # Delivered at commit; PostgreSQL folds identical notifications in one transaction.
        conn.execute(text(f"NOTIFY {CHANNEL}"))

    def lock_schema(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})

    def listen(self, engine: Engine, wake: threading.Event,
               listen_url: str | None = None) -> PgListener | None:
        try:
            return PgListener(engine, wake, listen_url)
        except Exception as exc:  # a pooler or server that refuses LISTEN
            log.warning("LISTEN unavailable (%s); falling back to polling", exc)
            return None


def _columns(rows: Sequence[dict[str, Any]], names: Iterable[str]) -> dict[str, list[Any]]:
    """Rows as one list per column, for ``unnest``."""
    return {name: [row[name] for row in rows] for name in names}


class PgListener:
    """A thread holding one LISTEN connection that sets ``wake`` on each notification.

    When the connection is lost (the server restarted, the backend was terminated) it says
    so once, reconnects every few seconds until it can, and then wakes the worker: work may
    have arrived while nobody listened. Meanwhile the worker polls.

    Each new connection first checks that notifications reach it: it sends one through
    ``engine``, as an enqueue would, and waits for it. Through a pooler in transaction mode
    (PgBouncer's ``pool_mode = transaction``) LISTEN is accepted but nothing ever arrives,
    because the client holds no server connection between transactions; the listener then
    says so, suggests ``AOL_LISTEN_URL``, and ends, and the worker polls.
    """

    #: seconds between attempts to reconnect
    RECONNECT_SECONDS = 2.0
    #: how long a new LISTEN connection waits for its own test notification
    PROBE_SECONDS = 10.0
    #: the test notification's payload: it shows delivery works and wakes nobody
    PROBE = "aol-listen-probe"

    def __init__(self, engine: Engine, wake: threading.Event,
                 listen_url: str | None = None) -> None:
        url = engine.url if listen_url is None else parse_url(listen_url)
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._connection: psycopg.Connection[Any] | None = self._connect()
        self._engine = engine
        self._wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aol-listen", daemon=True)
        self._thread.start()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the LISTEN connection, None while disconnected."""
        connection = self._connection
        return None if connection is None or connection.closed else connection.info.backend_pid

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        # Keepalives: a server that vanished without closing the connection (a machine gone,
        # a network partition) is noticed within about a minute, not hours later.
        connection = psycopg.connect(self._conninfo, autocommit=True, keepalives=1,
                                     keepalives_idle=30, keepalives_interval=10,
                                     keepalives_count=3)
        connection.execute(f"LISTEN {CHANNEL}")
        return connection

    def _run(self) -> None:
        lost = False
        confirmed = False  # a notification reached the current connection
        probe_due: float | None = None  # when its test notification is overdue; None: unsent
        while not self._stopping.is_set():
            try:
                if self._connection is None:
                    self._connection = self._connect()
                    log.info("LISTEN connection is back")
                    lost, confirmed, probe_due = False, False, None
                    self._wake.set()
                timeout = 10.0
                if not confirmed:
                    if probe_due is None:
                        probe_due = self._send_probe()
                    timeout = probe_due - time.monotonic()
                    if timeout <= 0:
                        self._give_up()
                        return
                # Blocks without using the CPU; stop() sends a notification to end it early.
                for notification in self._connection.notifies(timeout=timeout, stop_after=1):
                    confirmed = True
                    if notification.payload != self.PROBE:
                        self._wake.set()
            except Exception as exc:
                if self._stopping.is_set():
                    return
                if not lost:
                    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc
                    log.warning("LISTEN connection lost (%s); polling until it is back", reason)
                    lost = True
                self._close()
                self._stopping.wait(self.RECONNECT_SECONDS)

    def _send_probe(self) -> float:
        """Notify through ``engine``, as enqueues do; return when it is overdue."""
        with self._engine.begin() as conn:
            conn.execute(text(f"NOTIFY {CHANNEL}, '{self.PROBE}'"))
        return time.monotonic() + self.PROBE_SECONDS

    def _give_up(self) -> None:
        log.warning(
            "LISTEN: no notification reached the listening connection within %.0f s (a pooler "
            "in transaction mode, such as PgBouncer's pool_mode = transaction, cannot deliver "
            "them); polling instead. Set AOL_LISTEN_URL to a direct connection to PostgreSQL "
            "to wake workers at once", self.PROBE_SECONDS)
        if self._connection is not None:
            # else the pooler's server connection goes on listening for other clients
            with contextlib.suppress(Exception):
                self._connection.execute(f"UNLISTEN {CHANNEL}")
        self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        try:
            with self._engine.begin() as conn:
                conn.execute(text(f"NOTIFY {CHANNEL}"))
        except Exception as exc:  # the thread then ends at its next timeout
            log.debug("could not wake the LISTEN thread (%s)", exc)
        self._thread.join(timeout=2)
        self._close()
