"""The raw-SQL floor: the least a durable queue can do, through the DB-API directly.

A table of (id, type, payload, status, attempts, lease fields) with a partial index on the
pending rows. Enqueue is one ``executemany`` in one transaction. A drain commits twice per
action: one transaction claims the next pending row and leases it (SQLite: WAL,
``synchronous=NORMAL``, ``BEGIN IMMEDIATE`` and ``UPDATE ... WHERE id = (SELECT ... LIMIT 1)
RETURNING``; PostgreSQL: the same UPDATE with ``FOR UPDATE SKIP LOCKED`` in the subquery),
and one marks it SUCCESS. No log rows, no plugin dispatch, no ORM: whatever AOL costs above
this is AOL's.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import time
from typing import Any

from bench.databases import Fresh

TABLE = "floor_queue"
TYPE = "BENCH_NOOP"

_SQLITE_DDL = (
    f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL,"
    " status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT,"
    " lease_expires_at REAL, finished_at REAL)",
    f"CREATE INDEX floor_pending ON {TABLE} (id) WHERE status = 'PENDING'",
)
_PG_DDL = (
    f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, type text NOT NULL, payload jsonb NOT NULL,"
    " status text NOT NULL, attempts integer NOT NULL DEFAULT 0, lease_owner text,"
    " lease_expires_at timestamptz, finished_at timestamptz)",
    f"CREATE INDEX floor_pending ON {TABLE} (id) WHERE status = 'PENDING'",
)
_SQLITE_CLAIM = (
    f"UPDATE {TABLE} SET status = 'RUNNING', attempts = attempts + 1, lease_owner = ?,"
    f" lease_expires_at = ? WHERE id = (SELECT id FROM {TABLE} WHERE status = 'PENDING'"
    " ORDER BY id LIMIT 1) RETURNING id, type, payload"
)
_SQLITE_DONE = (
    f"UPDATE {TABLE} SET status = 'SUCCESS', lease_owner = NULL, lease_expires_at = NULL,"
    " finished_at = ? WHERE id = ?"
)
_PG_CLAIM = (
    f"UPDATE {TABLE} SET status = 'RUNNING', attempts = attempts + 1, lease_owner = %s,"
    " lease_expires_at = now() + interval '60 seconds'"
    f" WHERE id = (SELECT id FROM {TABLE} WHERE status = 'PENDING' ORDER BY id LIMIT 1"
    " FOR UPDATE SKIP LOCKED) RETURNING id, type, payload"
)
_PG_DONE = (
    f"UPDATE {TABLE} SET status = 'SUCCESS', lease_owner = NULL, lease_expires_at = NULL,"
    " finished_at = now() WHERE id = %s"
)


def _sqlite(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _pg(dsn: str) -> Any:
    import psycopg

    return psycopg.connect(dsn)


def create(db: Fresh) -> None:
    """Create the floor's table next to AOL's, in the same fresh database."""
    if db.kind == "sqlite":
        conn = _sqlite(db.raw)
        for statement in _SQLITE_DDL:
            conn.execute(statement)
        conn.close()
    else:
        with _pg(db.raw) as conn:
            for statement in _PG_DDL:
                conn.execute(statement)


def payloads(n: int) -> list[str]:
    return [json.dumps({"n": i}) for i in range(n)]


def bulk_insert(db: Fresh, n: int) -> float:
    """Insert ``n`` pending rows with one executemany in one transaction; return seconds."""
    rows = [(TYPE, p) for p in payloads(n)]
    if db.kind == "sqlite":
        conn = _sqlite(db.raw)
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT INTO {TABLE} (type, payload, status) VALUES (?, ?, 'PENDING')", rows)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        conn.close()
        return seconds
    with _pg(db.raw) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {TABLE} (type, payload, status) VALUES (%s, %s, 'PENDING')", rows)
        conn.commit()
        return time.perf_counter() - started


def add_history(db: Fresh, n: int) -> None:
    """Add ``n`` finished (SUCCESS) rows, the floor's counterpart of AOL's history."""
    if db.kind == "sqlite":
        conn = _sqlite(db.raw)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)"
            f" INSERT INTO {TABLE} (type, payload, status, attempts, finished_at)"
            " SELECT ?, json_object('n', i), 'SUCCESS', 1, ? FROM s", (n, TYPE, time.time()))
        conn.execute("COMMIT")
        conn.close()
        return
    with _pg(db.raw) as conn:
        conn.execute(
            f"INSERT INTO {TABLE} (type, payload, status, attempts, finished_at)"
            " SELECT %s, jsonb_build_object('n', i), 'SUCCESS', 1, now()"
            " FROM generate_series(1, %s) AS i", (TYPE, n))
        conn.commit()
        conn.execute(f"ANALYZE {TABLE}")
        conn.commit()


def _drain_sqlite(path: str, owner: str) -> int:
    conn = _sqlite(path)
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(_SQLITE_CLAIM, (owner, time.time() + 60)).fetchone()
        conn.execute("COMMIT")
        if row is None:
            break
        json.loads(row[2])
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_SQLITE_DONE, (time.time(), row[0]))
        conn.execute("COMMIT")
        done += 1
    conn.close()
    return done


def _drain_pg(dsn: str, owner: str) -> int:
    done = 0
    with _pg(dsn) as conn:
        while True:
            row = conn.execute(_PG_CLAIM, (owner,)).fetchone()
            conn.commit()
            if row is None:
                break
            conn.execute(_PG_DONE, (row[0],))
            conn.commit()
            done += 1
    return done


def _drain(kind: str, raw: str) -> None:
    owner = f"floor:{os.getpid()}"
    if kind == "sqlite":
        _drain_sqlite(raw, owner)
    else:
        _drain_pg(raw, owner)


def drain(db: Fresh, processes: int = 1) -> float:
    """Drain every pending row with ``processes`` forked processes; return wall seconds."""
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    workers = [context.Process(target=_drain, args=(db.kind, db.raw)) for _ in range(processes)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    seconds = time.perf_counter() - started
    failed = [p.exitcode for p in workers if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"floor drain process(es) failed with exit codes {failed}")
    return seconds


def count(db: Fresh, status: str) -> int:
    if db.kind == "sqlite":
        conn = _sqlite(db.raw)
        (n,) = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE status = ?", (status,)).fetchone()
        conn.close()
        return int(n)
    with _pg(db.raw) as conn:
        row = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE status = %s", (status,)).fetchone()
        return int(row[0])
