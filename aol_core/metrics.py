"""Prometheus metrics of the queue, read from the database at each scrape.

Every gauge is read through an index that holds only what it counts (the claim index for
waiting actions, the lease index for running ones, the held index), so a scrape costs the
same with ten million finished actions as with none: finished history is never counted,
only estimated where the database keeps an estimate (PostgreSQL). The names follow the
Prometheus conventions (``aol_`` prefix, base units, ``_total`` for counters); the table in
docs/operations.md lists each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from aol_core.control import read_flags
from aol_core.drivers import driver_for
from aol_core.models import CLAIMABLE, IS_CLAIMABLE, IS_HELD, IS_RUNNING, Status
from aol_core.models import actions_table as actions
from aol_core.models import schedule_state_table as schedule_states
from aol_core.timeutil import utcnow
from aol_core.worker_registry import live_workers


class QueueCollector(Collector):
    """The queue's state as gauges, read when Prometheus scrapes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        with self.engine.connect() as conn:
            yield _by_status_and_type(conn)
            yield _oldest_waiting(conn, now)
            workers = GaugeMetricFamily(
                "aol_workers_alive", "Workers that heartbeat within their lease")
            workers.add_metric([], len(live_workers(conn, now)))
            yield workers
            yield _missed_slots(conn)
            flags = GaugeMetricFamily(
                "aol_control_flag", "The fleet-wide switches: 1 when set", labels=["flag"])
            for name, value in vars(read_flags(conn)).items():
                flags.add_metric([name], 1 if value else 0)
            yield flags
            estimate = driver_for(conn).estimated_actions(conn)
            if estimate is not None:
                finished = GaugeMetricFamily(
                    "aol_actions_stored_estimate",
                    "Actions stored, finished history included: the database's estimate")
                finished.add_metric([], estimate)
                yield finished


def queue_registry(engine: Engine) -> CollectorRegistry:
    """A registry holding only the queue's gauges (no process metrics of the server)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(engine))
    return registry


def _by_status_and_type(conn: Connection) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        "aol_actions", "Unfinished actions by status (PENDING, RETRY, RUNNING, HELD) and type",
        labels=["status", "action_type"])
    for (word, action_type), n in sorted(unfinished_counts(conn).items()):
        gauge.add_metric([word, action_type], n)
    return gauge


def unfinished_counts(conn: Connection) -> dict[tuple[str, str], int]:
    """Unfinished actions by (status, type), each status through the partial index that
    holds only it; every status of a type that has any, 0 included, so a series drops to 0
    instead of vanishing."""
    counts: dict[tuple[str, str], int] = {
        (status, action_type): n for status, action_type, n in conn.execute(
            select(actions.c.status, actions.c.action_type, func.count())
            .where(IS_CLAIMABLE).group_by(actions.c.status, actions.c.action_type))}
    for condition, word in ((IS_RUNNING, Status.RUNNING.value), (IS_HELD, Status.HELD.value)):
        counts.update(((word, action_type), n) for action_type, n in conn.execute(
            select(actions.c.action_type, func.count())
            .where(condition).group_by(actions.c.action_type)))
    for action_type in {action_type for _, action_type in counts}:
        for word in (*CLAIMABLE, Status.RUNNING.value, Status.HELD.value):
            counts.setdefault((word, action_type), 0)
    return counts


def _oldest_waiting(conn: Connection, now: datetime) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        "aol_oldest_waiting_age_seconds",
        "How long the oldest due action of each type has waited since it became due",
        labels=["action_type"])
    for action_type, waited in sorted(oldest_waiting(conn, now).items()):
        gauge.add_metric([action_type], waited)
    return gauge


def oldest_waiting(conn: Connection, now: datetime) -> dict[str, float]:
    """Seconds the oldest due action of each type has waited since it became due (types
    with none due are absent), read through the claim index."""
    db_now: datetime = conn.execute(select(driver_for(conn).time(now))).scalar_one()
    return {action_type: max(0.0, (db_now - since).total_seconds())
            for action_type, since in conn.execute(
                select(actions.c.action_type, func.min(actions.c.not_before))
                .where(IS_CLAIMABLE, actions.c.not_before <= db_now)
                .group_by(actions.c.action_type))}


def _missed_slots(conn: Connection) -> CounterMetricFamily:
    counter = CounterMetricFamily(
        "aol_schedule_slots_missed", "Schedule slots skipped by their catch-up policy",
        labels=["schedule"])
    for name, missed in conn.execute(select(schedule_states.c.name, schedule_states.c.missed)):
        counter.add_metric([name], missed)
    return counter
