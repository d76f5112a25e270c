"""Claims and idle polls behind a backlog of another type; ``aol health`` and a pruning pass
over a large finished history. Prints milliseconds per operation (median of many).

    python -m bench.backlog --db sqlite --backlog 300000 --history 2000000
    python -m bench.backlog --db postgresql --backlog 300000 --history 2000000

The rows are generated in SQL (``generate_series`` on PostgreSQL, a recursive CTE on SQLite),
straight after which the measurements run, before autovacuum has necessarily looked at the
table: the claim must not depend on fresh statistics. PostgreSQL runs in its own schema of
the ``test`` database (``bench_backlog``), dropped at the end; SQLite in a temporary file.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from aol_core import create_engine, queue, schema
from aol_core.config import Settings
from aol_core.drivers import driver_for
from aol_core.health import check_health
from aol_core.plugins import load_plugins
from aol_core.timeutil import utcnow

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_backlog"
SERVED, OTHER = "BENCH_SERVED", "BENCH_OTHER"
COLUMNS = ("action_type, payload, idempotency_key, status, priority, attempts, max_attempts, "
           "not_before, fencing_token, proof_mode, created_at, updated_at, finished_at")


def rows_sql(dialect: str, n: int, action_type: str, status: str, age_days: float,
             prefix: str) -> str:
    """INSERT of ``n`` actions, due (and, if finished, finished) ``age_days`` ago."""
    # a millisecond apart, as actions finish one after another
    if dialect == "postgresql":
        when = f"now() - interval '{age_days} days' + g * interval '1 millisecond'"
        return (f"INSERT INTO aol_actions ({COLUMNS}) SELECT '{action_type}', '{{}}', "
                f"'{prefix}' || g, '{status}', 0, 0, 10, {when}, 0, false, {when}, {when}, "
                f"{when if status == 'SUCCESS' else 'NULL'} FROM generate_series(1, {n}) g")
    when = (f"strftime('%Y-%m-%d %H:%M:%f000', 'now', '-{age_days} days', "
            f"(i / 1000.0) || ' seconds')")
    return (f"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n}) "
            f"INSERT INTO aol_actions ({COLUMNS}) SELECT '{action_type}', '{{}}', "
            f"'{prefix}' || i, '{status}', 0, 0, 10, {when}, 0, 0, {when}, {when}, "
            f"{when if status == 'SUCCESS' else 'NULL'} FROM g")


def insert(engine: Engine, *args: object) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql(rows_sql(engine.dialect.name, *args))  # type: ignore[arg-type]
    return time.perf_counter() - started


def millis(run: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(engine: Engine, backlog: int, history: int) -> None:
    driver = driver_for(engine)
    name = engine.dialect.name
    print(f"{name}: inserting {backlog:,} due {OTHER} actions "
          f"({insert(engine, backlog, OTHER, 'PENDING', 1, 'o'):.1f} s)")

    def idle_poll() -> bool:
        with engine.connect() as conn:
            return queue.has_due(conn, [SERVED], utcnow())

    def claim() -> object:
        return driver.claim(engine, worker="bench", action_types=[SERVED], limit=10,
                            lease_seconds=60, now=utcnow())

    print(f"  idle poll (nothing of {SERVED} due): {millis(idle_poll, 200):.2f} ms")
    print(f"  claim finding nothing:              {millis(claim, 200):.2f} ms")
    insert(engine, 2000, SERVED, "PENDING", 1, "s")
    print(f"  claim of 10 of {SERVED}:          {millis(claim, 100):.2f} ms")

    registry = load_plugins(Settings(plugins=()))
    print(f"  inserting {history:,} SUCCESS actions, half older than 7 days "
          f"({insert(engine, history // 2, SERVED, 'SUCCESS', 10, 'h'):.1f} s + "
          f"{insert(engine, history - history // 2, SERVED, 'SUCCESS', 1, 'r'):.1f} s)")
    print(f"  aol health: {millis(lambda: check_health(engine, registry), 5):.1f} ms")
    started = time.perf_counter()
    pruned = queue.prune(engine, utcnow() - timedelta(days=7))
    print(f"  prune pass: {pruned:,} actions in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    again = queue.prune(engine, utcnow() - timedelta(days=7))
    print(f"  prune pass with nothing to prune: {again} actions in "
          f"{(time.perf_counter() - started) * 1000:.1f} ms")
    print(f"  aol health after: {millis(lambda: check_health(engine, registry), 5):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--backlog", type=int, default=300_000)
    parser.add_argument("--history", type=int, default=2_000_000)
    args = parser.parse_args()
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory() as workdir:
            engine = create_engine(f"sqlite:///{Path(workdir) / 'backlog.db'}")
            schema.upgrade(engine)
            measure(engine, args.backlog, args.history)
            engine.dispose()
        return
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    engine = create_engine(f"{PG_URL}?options=-csearch_path%3D{SCHEMA}")
    try:
        schema.upgrade(engine)
        measure(engine, args.backlog, args.history)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
