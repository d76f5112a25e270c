"""``python -m bench --peers``: other durable queues drain the same no-op work, beside AOL.

On each database, AOL and each peer that runs there get a fresh database of their own
(:meth:`Target.fresh`: a new SQLite file, or the benchmark's PostgreSQL database created
again), install their
schema, and enqueue the same number of no-op jobs with their own bulk API (not timed). Then
one worker process starts, run as the peer's documentation runs it and with its default
settings, and the drain is timed from the process's start until the benchmark sees no
unfinished job in the peer's own tables (polled every 50 ms): start-up included, the same
measure for every system in the run. Peers are benchmark-only extras
(``pip install -e 'bench/plugin[peers]'``), never dependencies of aol-core.

The peers' worker processes are ``python -m bench.peer_worker NAME WHERE``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import data, procs
from bench.databases import Fresh, Target, worker_env
from bench.report import Row, number

#: how often the benchmark looks whether a drain has finished
POLL_SECONDS = 0.05
NOOP = "noop"


@dataclass(frozen=True)
class System:
    """One queue in the comparison and what it promises."""

    name: str
    distribution: str
    kind: str
    settings: str
    delivery: str
    atomic: str
    #: put ``n`` no-op jobs in the queue (untimed)
    fill: Callable[[Fresh, int], None]
    #: SQL that returns a row while some job is unfinished, and SQL counting finished jobs
    unfinished: str
    finished: str

    def where(self, db: Fresh) -> str:
        """What the worker process is given: a SQLite file or a libpq connection string."""
        return str(db.workdir / "huey.db") if self.name == "huey" else db.raw


# --- the peers' own APIs: enqueue in the benchmark, consume in the worker process ----------


def _huey(path: str) -> Any:
    from huey import SqliteHuey

    huey = SqliteHuey("bench", filename=path)

    @huey.task(name=NOOP)
    def noop(n: int) -> None:
        return None

    return huey, noop


def _fill_huey(db: Fresh, n: int) -> None:
    _huey_app, noop = _huey(str(db.workdir / "huey.db"))
    for i in range(n):  # huey has no bulk enqueue: one transaction per task
        noop(i)


def _consume_huey(path: str) -> None:
    huey, _noop = _huey(path)
    huey.create_consumer(workers=1, worker_type="thread").run()  # huey_consumer's defaults


async def _pgqueuer(dsn: str) -> Any:
    import psycopg
    from pgqueuer import PsycopgDriver, Queries

    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    return connection, Queries(PsycopgDriver(connection))


def _fill_pgqueuer(db: Fresh, n: int) -> None:
    async def fill() -> None:
        connection, queries = await _pgqueuer(db.raw)
        await queries.install()
        for start in range(0, n, data.FILL_CHUNK):
            size = min(data.FILL_CHUNK, n - start)
            await queries.enqueue([NOOP] * size, [None] * size, [0] * size)
        await connection.close()

    asyncio.run(fill())


def _consume_pgqueuer(dsn: str) -> None:
    from pgqueuer import QueueManager
    from pgqueuer.types import QueueExecutionMode

    async def consume() -> None:
        connection, queries = await _pgqueuer(dsn)
        manager = QueueManager(queries)

        @manager.entrypoint(NOOP)
        async def noop(job: Any) -> None:
            return None

        await manager.run(mode=QueueExecutionMode.drain)  # batch_size 10, its default
        await connection.close()

    asyncio.run(consume())


def _procrastinate(dsn: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name=NOOP)
    async def noop(n: int) -> None:
        return None

    return app, noop


def _fill_procrastinate(db: Fresh, n: int) -> None:
    app, noop = _procrastinate(db.raw)

    async def fill() -> None:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            for start in range(0, n, data.FILL_CHUNK):
                await noop.batch_defer_async(
                    *({"n": i} for i in range(start, min(n, start + data.FILL_CHUNK))))

    asyncio.run(fill())


def _consume_procrastinate(dsn: str) -> None:
    app, _noop = _procrastinate(dsn)

    async def consume() -> None:
        async with app.open_async():
            await app.run_worker_async(wait=False)  # concurrency 1, LISTEN/NOTIFY: defaults

    asyncio.run(consume())


CONSUMERS: dict[str, Callable[[str], None]] = {
    "huey": _consume_huey, "pgqueuer": _consume_pgqueuer, "procrastinate": _consume_procrastinate,
}

_AOL = dict(
    name="aol", distribution="aol-core",
    settings="worker --burst; batch 10, concurrency 1 (defaults)",
    delivery="at least once", atomic="yes (handler's writes commit with the outcome)",
    fill=data.fill,
    unfinished="SELECT 1 FROM aol_actions WHERE status IN ('PENDING', 'RETRY', 'RUNNING') LIMIT 1",
    finished="SELECT count(*) FROM aol_actions WHERE status = 'SUCCESS'",
)
SYSTEMS = (
    System(kind="sqlite", **_AOL),  # type: ignore[arg-type]
    System("huey", "huey", "sqlite", "SqliteHuey, consumer: 1 thread worker (defaults)",
           "at most once (a task is removed from the queue before it runs)",
           "no (the handler writes elsewhere)", _fill_huey,
           "SELECT 1 FROM task LIMIT 1", "SELECT 0"),
    System(kind="postgresql", **_AOL),  # type: ignore[arg-type]
    System("pgqueuer", "pgqueuer", "postgresql",
           "QueueManager.run(mode=drain): batch 10 (default), psycopg driver",
           "at least once (a job whose heartbeat stops is picked again)",
           "no (completion is pgqueuer's own statement)", _fill_pgqueuer,
           "SELECT 1 FROM pgqueuer LIMIT 1",
           "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"),
    System("procrastinate", "procrastinate", "postgresql",
           "run_worker(wait=False): concurrency 1, LISTEN/NOTIFY (defaults)",
           "at most once by default (a crashed worker's job stays 'doing' until the app "
           "retries stalled jobs itself)", "no (completion is procrastinate's own statement)",
           _fill_procrastinate,
           "SELECT 1 FROM procrastinate_jobs WHERE status IN ('todo', 'doing') LIMIT 1",
           "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"),
)


# --- measuring --------------------------------------------------------------------------------


def _query(system: System, db: Fresh) -> Callable[[str], Any]:
    """A function running one SQL statement on the system's database, on one connection."""
    if system.kind == "sqlite":
        sqlite = sqlite3.connect(system.where(db), isolation_level=None, timeout=30)
        return lambda sql: sqlite.execute(sql).fetchone()
    import psycopg

    pg = psycopg.connect(db.raw, autocommit=True)
    return lambda sql: pg.execute(sql).fetchone()


def _start(system: System, db: Fresh) -> subprocess.Popen[bytes]:
    if system.name == "aol":
        return procs.start_worker(db, burst=True, tag="peers")
    log = (db.workdir / f"worker-{system.name}.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.peer_worker", system.name, system.where(db)],
            env=worker_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=Path(__file__).parent.parent)
    finally:
        log.close()


def drain(system: System, target: Target, n: int) -> float:
    """Seconds from starting one worker until ``n`` no-op jobs are finished."""
    db = target.fresh()
    system.fill(db, n)
    query = _query(system, db)
    started = time.perf_counter()
    process = _start(system, db)
    try:
        deadline = started + procs.WORKER_TIMEOUT
        while query(system.unfinished) is not None:
            if process.poll() is not None:
                raise procs.WorkerFailed(f"{system.name} worker exited with "
                                         f"{process.returncode}: {_log_tail(db, system)}")
            if time.perf_counter() > deadline:
                raise procs.WorkerFailed(f"{system.name} did not drain {n} jobs in time")
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - started
    finally:
        _end(process)
    finished = query(system.finished)[0]
    if system.finished != "SELECT 0" and finished != n:
        raise RuntimeError(f"{system.name}: {finished} of {n} jobs finished")
    return seconds


def _end(process: subprocess.Popen[bytes]) -> None:
    """Let a worker that stops by itself stop; stop one that waits for more work."""
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(db: Fresh, system: System) -> str:
    return procs.log_tail(db, "peers" if system.name == "aol" else system.name)


def label(system: System) -> str:
    return f"{system.name} {version(system.distribution)}"


def run(targets: dict[str, Target], n: int, runs: int,
        progress: Callable[[str], None]) -> tuple[list[Row], list[str]]:
    """Each system on each of its databases, ``runs`` times, in turn within each run."""
    rows: dict[tuple[str, str], Row] = {}
    errors: list[str] = []
    failed: set[System] = set()  # one failure is enough: its later runs are skipped
    for attempt in range(1, runs + 1):
        for system in SYSTEMS:
            target = targets.get(system.kind)
            if target is None or system in failed:
                continue
            progress(f"[{system.kind}] {system.name} drain {n} run {attempt}/{runs} ...")
            try:
                seconds = drain(system, target, n)
            except Exception as exc:
                errors.append(f"{system.kind} {system.name} run {attempt}: "
                              f"{type(exc).__name__}: {exc}")
                progress(f"  failed: {errors[-1]}")
                failed.add(system)
                continue
            row = rows.setdefault((system.kind, system.name), Row(
                system.kind, "peers", label(system), "actions/s"))
            row.values.append(n / seconds)
            progress(f"  {seconds:.1f} s: {n / seconds:,.0f} actions/s")
    return list(rows.values()), errors


def render(command: str, n: int, rows: list[Row], errors: list[str]) -> str:
    aol = {row.database: row.median for row in rows if row.label.startswith("aol ")}
    promises = {label(s): s for s in SYSTEMS}
    headers = ["database", "system", f"drain {n:,}, jobs/s", "spread (min-max)",
               "AOL ÷ this", "settings"]
    cells = [[
        row.database, row.label, number(row.median, row.unit),
        f"{number(min(row.values), row.unit)}-{number(max(row.values), row.unit)}",
        f"{aol[row.database] / row.median:.2f}x" if row.database in aol else "",
        promises[row.label].settings,
    ] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [f"Command: {command}", ""]
    for row_cells in [headers, ["-" * w for w in widths], *cells]:
        lines.append("  ".join(c.rjust(w) if i in (2, 3, 4) else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row_cells, widths, strict=True)))
                     .rstrip())
    lines += ["", "Timed from starting one worker process until no job is unfinished "
              "(start-up included); AOL ÷ this: AOL's median rate over this system's, on the "
              "same database in the same run.", "", "Guarantees:"]
    described = {s.name: s for s in SYSTEMS}  # AOL once, though it runs on both databases
    lines += [f"  {s.name}: delivery {s.delivery}; handler writes atomic with completion: "
              f"{s.atomic}" for s in described.values()]
    lines += [f"ERROR {error}" for error in errors]
    return "\n".join(lines)

