"""Putting actions in AOL's tables: through ``enqueue_many``, or raw SQL for old history."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from aol_core import NewAction, Settings, create_engine, enqueue_many, session_factory
from aol_core.models import actions_table as actions
from aol_core.plugins import PluginRegistry, load_plugins
from bench.databases import Fresh

BENCH_PLUGIN = "aol-bench-plugin"
BENCH_NOOP = "BENCH_NOOP"
BENCH_LIMITED = "BENCH_LIMITED"
#: actions per transaction when filling a queue for a drain
FILL_CHUNK = 10_000


def catalog() -> PluginRegistry:
    """The bench plugin alone, as a worker started with AOL_PLUGINS=aol-bench-plugin sees it."""
    registry = load_plugins(Settings(plugins=(BENCH_PLUGIN,)))
    if BENCH_NOOP not in registry.routes:
        states = ", ".join(f"{p.distribution}: {p.status} {p.error or ''}"
                           for p in registry.plugins)
        raise RuntimeError(f"{BENCH_NOOP} is not available ({states or 'no plugins'}); "
                           "run: pip install -e bench/plugin")
    return registry


def new_actions(n: int, start: int = 0) -> list[NewAction]:
    return [NewAction(BENCH_NOOP, {"n": i}) for i in range(start, start + n)]


def timed_enqueue(db: Fresh, n: int) -> float:
    """Seconds for one ``enqueue_many`` of ``n`` actions in one transaction, commit included."""
    registry, settings = catalog(), Settings()
    items = new_actions(n)
    engine = create_engine(db.url)
    sessions = session_factory(engine)
    try:
        started = time.perf_counter()
        with sessions() as session, session.begin():
            enqueue_many(session, items, catalog=registry, settings=settings)
        return time.perf_counter() - started
    finally:
        engine.dispose()


def limited_actions(n: int, accounts: int, due: bool = True) -> list[NewAction]:
    """``n`` BENCH_LIMITED actions, spread evenly over ``accounts`` keys, due now or in a
    day."""
    later = None if due else datetime.now(UTC) + timedelta(days=1)
    return [NewAction(BENCH_LIMITED, {"n": i, "account": i % accounts}, not_before=later)
            for i in range(n)]


def fill(db: Fresh, n: int, items: list[NewAction] | None = None) -> None:
    """Enqueue ``items`` (by default ``n`` BENCH_NOOP actions) through ``enqueue_many``, a
    chunk per transaction."""
    registry, settings = catalog(), Settings()
    engine = create_engine(db.url)
    sessions = session_factory(engine)
    items = new_actions(n) if items is None else items
    try:
        for start in range(0, len(items), FILL_CHUNK):
            with sessions() as session, session.begin():
                enqueue_many(session, items[start : start + FILL_CHUNK],
                             catalog=registry, settings=settings)
    finally:
        engine.dispose()


def add_history(db: Fresh, n: int) -> None:
    """Insert ``n`` finished (SUCCESS) actions with raw SQL, as a long-lived queue has.

    Rows look like a BENCH_NOOP action that succeeded a day ago (payload, key, attempt,
    fencing token, timestamps). PostgreSQL gets ANALYZE afterwards, as autovacuum would.
    """
    day_ago = datetime.now(UTC) - timedelta(days=1)
    columns = ("action_type, payload, idempotency_key, status, priority, attempts, max_attempts,"
               " not_before, fencing_token, proof_mode, created_at, updated_at, started_at,"
               " finished_at")
    if db.kind == "sqlite":
        stamp = day_ago.strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy stores it
        conn = sqlite3.connect(db.raw, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n)"
            f" INSERT INTO aol_actions ({columns})"
            " SELECT :type, json_object('n', i), 'history-' || i, 'SUCCESS', 0, 1, 10,"
            " :t, 1, 0, :t, :t, :t, :t FROM s",
            {"n": n, "type": BENCH_NOOP, "t": stamp})
        conn.execute("COMMIT")
        conn.close()
        return
    engine = create_engine(db.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(f"INSERT INTO aol_actions ({columns})"
                     " SELECT :type, jsonb_build_object('n', i), 'history-' || i, 'SUCCESS',"
                     " 0, 1, 10, :t, 1, false, :t, :t, :t, :t"
                     " FROM generate_series(1, :n) AS i"),
                {"n": n, "type": BENCH_NOOP, "t": day_ago})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE aol_actions"))
    finally:
        engine.dispose()


def count(db: Fresh, where: str) -> int:
    engine = create_engine(db.url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(f"SELECT count(*) FROM aol_actions WHERE {where}"))
                       .scalar_one())
    finally:
        engine.dispose()


def drain_seconds(db: Fresh, since: datetime, action_type: str | None = None) -> float:
    """From the first claim to the last completion (of ``action_type``, or any), as the
    table records them: the drain itself, without the worker processes' start-up (measured
    as a scenario of its own)."""
    engine = create_engine(db.url)
    query = (select(func.min(actions.c.started_at), func.max(actions.c.finished_at))
             .where(actions.c.status == "SUCCESS", actions.c.started_at >= since))
    if action_type is not None:
        query = query.where(actions.c.action_type == action_type)
    try:
        with engine.connect() as conn:
            first, last = conn.execute(query).one()
    finally:
        engine.dispose()
    return float((last - first).total_seconds())
