"""``aol worker --http HOST:PORT``: a worker's own ``/healthz`` and ``/metrics``, so an
orchestrator can probe each worker and Prometheus can scrape what each one did.

The metrics here are the worker's counters and histograms (attempts it started and how
they ended, handler durations, start delays), kept in memory by this process; the queue's
state is ``aol serve``'s ``/metrics``, read from the database once for the whole fleet.
Needs the ``aol-core[serve]`` extra.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram
from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette

from aol_core.dispatch import Outcome
from aol_core.drivers import Claim
from aol_core.models import Status
from aol_core.serve import HttpServer, probes
from aol_core.timeutil import utcnow
from aol_core.worker import Worker

log = logging.getLogger("aol.worker")

#: histogram buckets, in seconds: from a fast database-only handler to a slow HTTP call
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                    300)
#: from an action claimed at once to one that waited an hour
DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)


class WorkerMetrics:
    """The worker's :class:`~aol_core.worker.AttemptObserver` that counts into Prometheus
    metrics (the client's metrics are thread-safe)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        by_type = ["action_type"]

        def counter(name: str, text: str) -> Counter:
            return Counter(name, text, by_type, registry=self.registry)

        self.started_total = counter("aol_actions_started", "Attempts this worker started")
        self.ended = {
            Status.SUCCESS: counter("aol_actions_succeeded", "Attempts that succeeded"),
            Status.FAILED: counter("aol_actions_failed",
                                   "Attempts that failed permanently (not retried)"),
            Status.RETRY: counter("aol_actions_retried", "Attempts that left their action "
                                  "waiting to run again: failed with attempts left, or "
                                  "snoozed"),
            Status.DLQ: counter("aol_actions_dead_lettered",
                                "Attempts that failed with no attempt left (to DLQ)"),
            Status.HELD: counter("aol_actions_held", "Attempts whose handler held the action "
                                 "for a person"),
        }
        # a snooze in the first attempt leaves its action PENDING: waiting to run again
        self.ended[Status.PENDING] = self.ended[Status.RETRY]
        self.lost = counter("aol_actions_lease_lost", "Attempts whose outcome was refused: "
                            "the action was cancelled or taken over meanwhile")
        self.duration = Histogram(
            "aol_handler_duration_seconds", "Time spent in the handler, per attempt", by_type,
            registry=self.registry, buckets=DURATION_BUCKETS)
        self.delay = Histogram(
            "aol_action_start_delay_seconds", "From when an attempt was due (its not-before "
            "time) to its start", by_type, registry=self.registry, buckets=DELAY_BUCKETS)

    def started(self, claim: Claim) -> None:
        self.started_total.labels(claim.action_type).inc()
        waited = (utcnow() - claim.not_before).total_seconds()
        self.delay.labels(claim.action_type).observe(max(0.0, waited))

    def finished(self, outcome: Outcome) -> None:
        action_type = outcome.claim.action_type
        self.duration.labels(action_type).observe(outcome.seconds)
        ended = self.lost if outcome.status is None else self.ended.get(outcome.status)
        if ended is not None:
            ended.labels(action_type).inc()


@contextmanager
def serving(worker: Worker, host: str, port: int) -> Iterator[HttpServer]:
    """Serve the worker's ``/healthz`` and ``/metrics`` on ``host:port`` while the block runs."""
    metrics = WorkerMetrics()
    server = HttpServer(Starlette(routes=probes(None, metrics.registry,
                                                worker.settings.serve_probes_token)),
                        host, port)
    worker.observer = metrics
    thread = threading.Thread(target=server.run, name="aol-http", daemon=True)
    thread.start()
    log.info("worker %s serves /healthz and /metrics on %s", worker.name, server.url,
             extra={"worker": worker.name, "event": "http"})
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=10)
