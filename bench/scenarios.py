"""The scenarios: each runs once on one kind of database and returns its samples.

Every measurement starts from a fresh database (:meth:`Target.fresh`); the floor's
counterpart runs on a fresh database of its own right after AOL's.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text

from aol_core import Settings, create_engine, enqueue_many, session_factory
from aol_core.models import actions_table
from bench import data, floor, procs
from bench.databases import Target


@dataclass(frozen=True)
class Sizes:
    enqueue: int = 100_000
    drain: int = 50_000
    memory: int = 100_000
    memory_mark: int = 10_000
    history: int = 1_000_000
    latency_samples: int = 100
    #: mean gap between single enqueues in the latency scenario (jittered ±50%)
    latency_gap: float = 0.2
    idle_seconds: float = 30.0
    #: rate-limited actions waiting while unrestricted ones drain
    limited_backlog: int = 100_000
    #: jobs each system drains in ``--peers``
    peers: int = 20_000


FULL = Sizes()
#: ~20-25x smaller, 5 s idle window: the whole run (3 runs, both databases) in ~3 minutes
QUICK = Sizes(enqueue=5_000, drain=2_000, memory=4_000, memory_mark=400, history=50_000,
              latency_samples=15, idle_seconds=5.0, limited_backlog=10_000,
              peers=2_000)
#: keys (accounts) the limited backlog is spread over: one action of each runs, then every
#: key is at its limit (once an hour) and the rest wait
LIMITED_ACCOUNTS = 100
#: worker processes waiting for work in the latency and idle-CPU scenarios
IDLE_WORKERS = 2
MULTI_WORKERS = (2, 4)


@dataclass(frozen=True)
class Sample:
    label: str
    unit: str
    value: float
    floor: float | None = None
    higher_is_better: bool = True


@dataclass(frozen=True)
class Plan:
    sizes: Sizes
    scenarios: tuple[str, ...]


Scenario = Callable[[Target, Plan], list[Sample]]


def k(n: int) -> str:
    """100000 -> 100k, 1000000 -> 1M, 2500 -> 2.5k."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if n >= size:
            return f"{n / size:g}{suffix}"
    return str(n)


def drain_label(n: int, workers: int) -> str:
    return f"drain {k(n)}, {workers} worker{'s' if workers > 1 else ''}"


def _expect(found: int, wanted: int, what: str) -> None:
    if found != wanted:
        raise RuntimeError(f"{what}: expected {wanted}, found {found}")


def enqueue(target: Target, plan: Plan) -> list[Sample]:
    n = plan.sizes.enqueue
    db = target.fresh()
    seconds = data.timed_enqueue(db, n)
    _expect(data.count(db, "status = 'PENDING'"), n, "enqueued actions")
    fdb = target.fresh()
    floor.create(fdb)
    floor_seconds = floor.bulk_insert(fdb, n)
    return [Sample(f"enqueue {k(n)} (enqueue_many)", "actions/s", n / seconds, n / floor_seconds)]


def _aol_drain(target: Target, n: int, workers: int, history: int = 0) -> float:
    db = target.fresh()
    if history:
        data.add_history(db, history)
    data.fill(db, n)
    since = datetime.now(UTC)
    procs.burst(db, workers)
    _expect(data.count(db, "status = 'SUCCESS'"), n + history, "SUCCESS actions after drain")
    return data.drain_seconds(db, since)


def _floor_drain(target: Target, n: int, workers: int, history: int = 0) -> float:
    db = target.fresh()
    floor.create(db)
    if history:
        floor.add_history(db, history)
    floor.bulk_insert(db, n)
    seconds = floor.drain(db, workers)
    _expect(floor.count(db, "SUCCESS"), n + history, "floor SUCCESS rows after drain")
    return seconds


def drain(target: Target, plan: Plan) -> list[Sample]:
    n = plan.sizes.drain
    startup = procs.burst(target.fresh())
    seconds = _aol_drain(target, n, 1)
    floor_seconds = _floor_drain(target, n, 1)
    return [
        Sample("worker start-up (--burst, empty queue)", "s", startup, higher_is_better=False),
        Sample(drain_label(n, 1), "actions/s", n / seconds, n / floor_seconds),
    ]


def drain_multi(target: Target, plan: Plan) -> list[Sample]:
    n = plan.sizes.drain
    samples = []
    for workers in MULTI_WORKERS:
        seconds = _aol_drain(target, n, workers)
        floor_seconds = _floor_drain(target, n, workers)
        samples.append(Sample(drain_label(n, workers), "actions/s", n / seconds,
                              n / floor_seconds))
    return samples


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def idle(target: Target, plan: Plan) -> list[Sample]:
    """Idle CPU of waiting workers, then enqueue-to-start latency with the same workers."""
    sizes = plan.sizes
    db = target.fresh()
    workers = [procs.start_worker(db, burst=False, tag=f"idle{i}") for i in range(IDLE_WORKERS)]
    samples = []
    try:
        procs.wait_registered(db, workers)
        time.sleep(1.0)  # let start-up work (first polls, listener) settle
        if "idle-cpu" in plan.scenarios:
            before = [procs.cpu_seconds(w.pid) for w in workers]
            started = time.monotonic()
            time.sleep(sizes.idle_seconds)
            after = [procs.cpu_seconds(w.pid) for w in workers]
            elapsed = time.monotonic() - started
            used = statistics.mean(b - a for a, b in zip(before, after, strict=True))
            samples.append(Sample(f"idle worker CPU over {sizes.idle_seconds:g} s", "% core",
                                  100 * used / elapsed, higher_is_better=False))
        if "latency" in plan.scenarios:
            latencies = _latencies(db.url, sizes)
            label = f"enqueue-to-start, {IDLE_WORKERS} idle workers"
            samples += [
                Sample(f"{label}, p50", "ms", percentile(latencies, 50), higher_is_better=False),
                Sample(f"{label}, p99", "ms", percentile(latencies, 99), higher_is_better=False),
            ]
    finally:
        for i, worker in enumerate(workers):
            procs.stop(db, worker, f"idle{i}")
    return samples


def _latencies(url: str, sizes: Sizes) -> list[float]:
    registry, settings = data.catalog(), Settings()
    engine = create_engine(url)
    sessions = session_factory(engine)
    rng = random.Random(1)
    n = sizes.latency_samples
    try:
        for item in data.new_actions(n):
            with sessions() as session, session.begin():
                enqueue_many(session, [item], catalog=registry, settings=settings)
            time.sleep(sizes.latency_gap * rng.uniform(0.5, 1.5))
        deadline = time.monotonic() + 120
        query = select(actions_table.c.created_at, actions_table.c.started_at).where(
            actions_table.c.status == "SUCCESS")
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                rows = list(conn.execute(query))
            if len(rows) == n:
                return [(row.started_at - row.created_at).total_seconds() * 1000 for row in rows]
            time.sleep(0.1)
        raise RuntimeError(f"only {len(rows)} of {n} latency probes ran within 120 s")
    finally:
        engine.dispose()


def memory(target: Target, plan: Plan) -> list[Sample]:
    n, mark = plan.sizes.memory, plan.sizes.memory_mark
    db = target.fresh()
    data.fill(db, n)
    worker = procs.start_worker(db, burst=False, tag="memory")
    at_mark = at_end = None
    engine = create_engine(db.url)
    # literal statuses, so both databases read the partial claim index, not the whole table
    pending = text("SELECT count(*) FROM (SELECT 1 FROM aol_actions"
                   " WHERE status IN ('PENDING', 'RETRY') LIMIT :m) AS due")
    try:
        deadline = time.monotonic() + procs.WORKER_TIMEOUT
        while at_end is None and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise procs.WorkerFailed(f"worker exited: {procs.log_tail(db, 'memory')}")
            with engine.connect() as conn:
                left = conn.execute(pending, {"m": n - mark + 1}).scalar_one()
            if at_mark is None and left <= n - mark:
                at_mark = procs.rss_mib(worker.pid)
            if left == 0 and data.count(db, "status = 'SUCCESS'") == n:
                at_end = procs.rss_mib(worker.pid)
            time.sleep(0.1)
    finally:
        engine.dispose()
        procs.stop(db, worker, "memory")
    if at_mark is None or at_end is None:
        raise RuntimeError("the memory drain did not finish")
    return [
        Sample(f"worker RSS after {k(mark)} actions", "MiB", at_mark, higher_is_better=False),
        Sample(f"worker RSS after {k(n)} actions", "MiB", at_end, higher_is_better=False),
        Sample(f"worker RSS growth {k(mark)} -> {k(n)}", "MiB", at_end - at_mark,
               higher_is_better=False),
    ]


def history(target: Target, plan: Plan) -> list[Sample]:
    n, old = plan.sizes.drain, plan.sizes.history
    samples = []
    if "drain" not in plan.scenarios:  # the empty-table rate to compare with
        samples.append(Sample(drain_label(n, 1), "actions/s", n / _aol_drain(target, n, 1),
                              n / _floor_drain(target, n, 1)))
    seconds = _aol_drain(target, n, 1, history=old)
    floor_seconds = _floor_drain(target, n, 1, history=old)
    samples.append(Sample(history_label(n, old), "actions/s", n / seconds, n / floor_seconds))
    return samples


def history_label(n: int, old: int) -> str:
    return f"{drain_label(n, 1)}, {k(old)} SUCCESS in table"


def limited_backlog(target: Target, plan: Plan) -> list[Sample]:
    """One worker drains unrestricted actions, alone and with a backlog of rate-limited
    actions waiting (enqueued first, every key at its limit): the backlog must not slow it.
    The drains use a waiting (not ``--burst``) worker, which a due backlog does not stop.
    The control has the same backlog not yet due: the same table, but nothing for the
    limited type's claim to look at, which tells a table-size effect from flow control's."""
    n, m = plan.sizes.drain, plan.sizes.limited_backlog
    floor_seconds = _floor_drain(target, n, 1)
    label = f"{drain_label(n, 1)} unrestricted"
    return [
        Sample(f"{label}, no limited backlog", "actions/s",
               n / _drain_beside(target, n, 0), n / floor_seconds),
        Sample(f"{label}, {k(m)} rate-limited waiting", "actions/s",
               n / _drain_beside(target, n, m), n / floor_seconds),
        Sample(f"{label}, {k(m)} rate-limited due tomorrow (control)", "actions/s",
               n / _drain_beside(target, n, m, due=False), n / floor_seconds),
    ]


def _drain_beside(target: Target, n: int, limited: int, due: bool = True) -> float:
    """Seconds a waiting worker takes to run ``n`` BENCH_NOOP actions enqueued after
    ``limited`` BENCH_LIMITED ones (due now, or tomorrow)."""
    db = target.fresh()
    data.fill(db, limited, data.limited_actions(limited, LIMITED_ACCOUNTS, due))
    data.fill(db, n)
    since = datetime.now(UTC)
    worker = procs.start_worker(db, burst=False, tag="beside")
    done = f"status = 'SUCCESS' AND action_type = '{data.BENCH_NOOP}'"
    try:
        deadline = time.monotonic() + procs.WORKER_TIMEOUT
        while data.count(db, done) < n:
            if worker.poll() is not None:
                raise procs.WorkerFailed(f"worker exited: {procs.log_tail(db, 'beside')}")
            if time.monotonic() > deadline:
                raise RuntimeError("the drain beside the limited backlog did not finish")
            time.sleep(0.1)
    finally:
        procs.stop(db, worker, "beside")
    ran = data.count(db, f"status = 'SUCCESS' AND action_type = '{data.BENCH_LIMITED}'")
    if ran > min(limited, LIMITED_ACCOUNTS):
        raise RuntimeError(f"{ran} limited actions ran, over their limit of one per account")
    return data.drain_seconds(db, since, data.BENCH_NOOP)


#: scenario name -> (function, what it measures); "latency" and "idle-cpu" share a run
SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "enqueue": (enqueue, "bulk enqueue through enqueue_many"),
    "drain": (drain, "one burst worker drains the queue; worker start-up time"),
    "drain-multi": (drain_multi, "2 and 4 burst workers drain the queue"),
    "latency": (idle, "enqueue-to-start latency with idle workers waiting"),
    "idle-cpu": (idle, "CPU an idle worker uses"),
    "memory": (memory, "worker RSS while draining"),
    "history": (history, "drain rate with finished actions in the table"),
    "limited-backlog": (limited_backlog, "drain rate of unrestricted actions with and without "
                        "a backlog of rate-limited ones waiting"),
}
