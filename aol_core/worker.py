"""The worker loop: claim what can start, run on threads, heartbeat, obey the switches, stop
cleanly.

Threads: the main loop claims and watches the control flags; ``concurrency`` runner threads
each dispatch one action at a time with their own session; a heartbeat thread keeps the
worker's registration and its running actions' leases alive, and tells a running handler
(``context.cancelled``) when its action was cancelled or taken from it.

A worker claims only while a runner is free, and only what its free runners can start (for
fast shareable handlers, a batch each and one more): a hung handler holds its own action and
nothing else, and a claim that has not started within a third of a lease is handed back
rather than renewed, so another worker can take it.

Stopping (signal, kill switch, ``--burst`` out of work) stops claiming, hands back claimed
actions that had not started, and lets running ones finish within the grace period. A
``--burst`` worker is out of work once none of its types has an action due: due actions held
back by a rate limit or concurrency cap keep it waiting, as they become claimable by
themselves; actions due later (RETRY backoff, scheduled) do not.
"""

from __future__ import annotations

import logging
import platform
import queue as queue_module
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from importlib.metadata import version
from typing import Protocol

import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from aol_core import flow, limits, pruning, queue, scheduler, worker_registry
from aol_core.config import Settings
from aol_core.control import Flags, read_flags
from aol_core.db import mask_url
from aol_core.dispatch import Dispatcher, Outcome
from aol_core.drivers import Claim, driver_for
from aol_core.models import Status
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import utcnow

log = logging.getLogger("aol.worker")

#: how often a worker asks whether it is its turn to prune (one worker prunes per hour)
PRUNE_EVERY_SECONDS = 300
#: how often a worker ticks the schedules (each slot is enqueued once, whoever ticks)
SCHEDULE_TICK_SECONDS = 1.0
#: handlers faster than this (moving average) share transactions with their batch-mates,
#: if their type declares ``share_transaction``
FAST_HANDLER_SECONDS = 0.005
#: the most fast shareable actions claimed at once per free runner, or run in one transaction
FAST_BATCH = 100
#: a shared transaction takes no more actions once their expected handler time adds up to
#: this, which bounds how long it holds SQLite's write lock
SHARED_TRANSACTION_SECONDS = 0.02


@dataclass
class _Held:
    """A claim this worker holds, and when its lease must stop being extended."""

    claim: Claim
    claimed_at: float
    timeout: float | None = None
    started: bool = False
    deadline: float | None = None
    overdue_reported: bool = False
    #: becomes the handler's ``context.cancelled`` (made when it starts on its own)
    cancelled: threading.Event | None = None


def database_problem(exc: DBAPIError) -> str:
    """The database's own message (no SQL, no values: they may hold payloads)."""
    return limits.database_message(exc) or type(exc).__name__


def _key(claim: Claim) -> tuple[int, int]:
    return (claim.id, claim.fencing_token)


@dataclass
class _LoopState:
    idle: bool = True
    last_flags: float = 0.0
    last_rescue: float = float("-inf")
    last_prune: float = float("-inf")
    last_tick: float = float("-inf")


@dataclass
class WorkerOptions:
    name: str | None = None
    concurrency: int = 1
    proof_mode: bool = False
    burst: bool = False
    allow_broken_plugins: bool = False


class AttemptObserver(Protocol):
    """Told of every attempt a worker starts and finishes (its metrics, say); called from
    the runner threads, so it must be thread-safe and quick."""

    def started(self, claim: Claim) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...


class Worker:
    def __init__(
        self, engine: Engine, registry: PluginRegistry, settings: Settings, options: WorkerOptions
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.settings = settings
        self.options = options
        self.identity = worker_registry.WorkerIdentity.here(options.name)
        self.name = self.identity.name
        self.driver = driver_for(engine)
        self.action_types = sorted(registry.routes)
        self.flow = flow.FlowControl(
            engine, {name: route.spec for name, route in registry.routes.items()},
            settings.poll_interval)
        self.dispatcher = Dispatcher(engine, registry, settings, self.name)
        self.observer: AttemptObserver | None = None
        self.ticker = scheduler.Ticker(engine, registry, settings)
        self.stopping = threading.Event()
        #: set once the worker is registered and about to claim (for embedding and tests)
        self.started = threading.Event()
        self.wake = threading.Event()
        self.ready: queue_module.Queue[Claim | None] = queue_module.Queue()
        #: claims this worker holds, by (action id, fencing token): a re-claim is another entry
        self.held: dict[tuple[int, int], _Held] = {}
        #: runners busy with an action or batch
        self.busy = 0
        self.lock = threading.Lock()
        self.flags = Flags()
        self.counts: Counter[str] = Counter()
        self.reported: Counter[str] = Counter()
        self.reported_at = time.monotonic()
        #: recent handler time per action type (moving average), which decides batching
        self.handler_seconds: dict[str, float] = {}
        self.stop_reason = ""
        self.signalled = ""

    @property
    def alive_for(self) -> timedelta:
        return timedelta(seconds=self.settings.lease_seconds)

    def request_stop(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stop_reason = reason
            log.info("stopping (%s): no new claims; finishing running actions", reason)
        self.stopping.set()
        self.wake.set()

    def run(self) -> int:
        with self.engine.connect() as conn:
            self.flags = read_flags(conn)
        if self.flags.killed:
            log.warning("the kill switch is set (aol control revive clears it); not starting")
            return 0
        self.registry.check(self.options.allow_broken_plugins)
        with self.engine.begin() as conn:
            worker_registry.register(
                conn, self.identity, versions=self._versions(), action_types=self.action_types,
                degraded=bool(self.registry.broken), now=utcnow(), alive_for=self.alive_for,
            )
        self._announce()
        # A burst worker exits rather than waits for work, so it needs no wake-ups.
        listener = None if self.options.burst else self.driver.listen(
            self.engine, self.wake, self.settings.listen_url)
        runners = [
            threading.Thread(target=self._run_actions, name=f"aol-run-{i}", daemon=True)
            for i in range(self.options.concurrency)
        ]
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(beating,), name="aol-heartbeat",
                                 daemon=True)
        for thread in [*runners, heart]:
            thread.start()
        self.started.set()
        try:
            self._claim_loop()
        finally:
            try:
                self._finish(runners)
            finally:
                beating.set()
                heart.join(timeout=5)
                if listener is not None:
                    listener.stop()
                self._deregister()
        return 0

    def signal_stop(self, reason: str) -> None:
        """For signal handlers: only records the request (setting an Event from a handler can
        deadlock on its lock); the claim loop notices within a quarter second."""
        self.signalled = reason

    def _deregister(self) -> None:
        try:
            with self.engine.begin() as conn:
                worker_registry.deregister(conn, self.identity, utcnow())
        except Exception as exc:
            log.warning("could not mark the worker stopped (%s); health will see it expire", exc)
        log.info("worker %s stopped (%s): %s", self.name, self.stop_reason or "done",
                 ", ".join(f"{n} {k}" for k, n in sorted(self.counts.items())) or "no actions",
                 extra={"worker": self.name, "event": "stopped"})

    # --- the main loop ------------------------------------------------------------------

    def _claim_loop(self) -> None:
        loop = _LoopState()
        while not self.stopping.is_set():
            try:
                self._step(loop)
            except Exception as exc:  # a daemon keeps going: log, wait, try again
                if isinstance(exc, DBAPIError):  # the database restarting or unreachable
                    log.warning("database error (%s); trying again in %.1f s",
                                database_problem(exc), self.settings.poll_interval)
                else:  # a bug: the traceback says what to fix
                    log.exception("unexpected error in the claim loop; trying again")
                loop.idle = True
                self._sleep(self.settings.poll_interval)

    def _step(self, loop: _LoopState) -> None:
        """One turn: obey the switches, repair expired leases now and then, claim or wait."""
        if self.signalled:
            self.request_stop(self.signalled)
            return
        settings = self.settings
        clock = time.monotonic()
        if loop.idle or clock - loop.last_flags >= settings.poll_interval:
            with self.engine.connect() as conn:
                self.flags = read_flags(conn)
            loop.last_flags = clock
            if self.flags.killed:
                self.request_stop("kill switch")
                return
            if self.flags.paused:
                if self.options.burst:
                    self.request_stop("burst: the queue is paused (aol control resume); "
                                      "nothing may run")
                    return
                self._sleep(settings.poll_interval)
                return
        if self.options.burst and not self.action_types:
            self.request_stop("burst: no action types to run (no plugin loaded any)")
            return
        if clock - loop.last_rescue >= settings.lease_seconds / 4:
            self._rescue()
            loop.last_rescue = clock
        if clock - loop.last_tick >= SCHEDULE_TICK_SECONDS:
            self.ticker.tick()
            loop.last_tick = clock
        if clock - loop.last_prune >= PRUNE_EVERY_SECONDS:
            pruned = pruning.prune_if_my_turn(
                self.engine, settings, utcnow(),
                keep_going=lambda: not (self.stopping.is_set() or self.signalled))
            if pruned is not None and any(vars(pruned).values()):
                log.info("pruned %d finished action(s) older than %s, %d idempotency key(s) "
                         "and %d registration(s) of workers long gone", pruned.actions,
                         settings.retention, pruned.keys, pruned.workers)
            loop.last_prune = clock
        limit = self._claim_limit()
        if limit <= 0 or not self.action_types:  # every runner busy, or nothing to claim
            self._sleep(settings.poll_interval)
            return
        # Looked at before claiming: an action settled as RETRY while the claim ran is due.
        nothing_running = not self.held
        loop.idle = not self._claim(limit, loop.idle)
        if not loop.idle:
            return
        if self.options.burst and nothing_running and not self._held_back():
            self.request_stop(self._nothing_due())
            return
        self._sleep(settings.poll_interval)

    def _held_back(self) -> bool:
        """Whether actions of limited types are due but over their limits: a burst worker
        waits for them (for the rate window to move on, or running ones to settle) rather
        than stop, since they will become claimable without anyone acting."""
        limited = sorted(self.flow.limited())
        if not limited:
            return False
        with self.engine.connect() as conn:
            return queue.has_due(conn, limited, utcnow())

    def _nothing_due(self) -> str:
        """Why a burst worker stops: nothing due, and what waits to become due."""
        now = utcnow()
        with self.engine.connect() as conn:
            waiting, next_due = queue.waiting_not_due(conn, self.action_types, now)
        if not waiting or next_due is None:
            return "burst: nothing due"
        return (f"burst: nothing due now; {waiting} action(s) wait (RETRY or scheduled), "
                f"the next due at {next_due:%Y-%m-%d %H:%M:%S} UTC "
                f"(in {max(0.0, (next_due - now).total_seconds()):.0f} s)")

    def _claim(self, limit: int, idle: bool) -> list[Claim]:
        now = utcnow()
        if idle:
            with self.engine.connect() as conn:
                if not queue.has_due(conn, self.action_types, now):
                    return []
        # Limited types are claimed on their own path; the others exactly as without limits.
        limited = self.flow.limited()
        claims = self.flow.claim(worker=self.name, limit=limit,
                                 lease_seconds=self.settings.lease_seconds,
                                 now=now) if limited else []
        free_types = [t for t in self.action_types if t not in limited] if limited \
            else self.action_types
        if free_types and len(claims) < limit:
            claims += self.driver.claim(
                self.engine, worker=self.name, action_types=free_types,
                limit=limit - len(claims), lease_seconds=self.settings.lease_seconds, now=now,
            )
        clock = time.monotonic()
        with self.lock:
            for claim in claims:
                timeout = self.registry.routes[claim.action_type].spec.timeout
                self.held[_key(claim)] = _Held(claim, clock, timeout)
        for claim in claims:
            self.ready.put(claim)
        return claims

    def _rescue(self) -> None:
        for action_id, status in queue.rescue_expired(self.engine, utcnow(), self.name,
                                                      self.settings):
            log.warning("action %s: lease expired; now %s", action_id, status,
                        extra=self._fields(action_id, "lease_expired"))

    def _sleep(self, seconds: float) -> None:
        """Wait for a wake-up or ``seconds``, looking for a signal every quarter second."""
        deadline = time.monotonic() + seconds
        while not self.signalled:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.wake.wait(min(remaining, 0.25)):
                break
        self.wake.clear()

    # --- runners ------------------------------------------------------------------------

    def _run_actions(self) -> None:
        while True:
            claim = self.ready.get()
            if claim is None:
                return
            batch, left_over = self._gather(claim)
            for group in ([batch, [left_over]] if left_over else [batch]):
                self._run_group(group)

    def _claim_limit(self) -> int:
        """How many to claim now: nothing while every runner is busy (so a hung handler
        holds no other action); else one for each free runner, at most ``batch_size`` at
        once, or, while every type this worker has run is fast and shareable, a batch for
        each free runner and one more, so the next shared transaction is ready to start."""
        with self.lock:
            free = self.options.concurrency - self.busy
            unstarted = sum(not held.started for held in self.held.values())
        if free <= 0:
            return 0
        times = dict(self.handler_seconds)  # copied at once: runners add types
        if times and all(self._fast(action_type) for action_type in times):
            return (free + 1) * max(self.settings.batch_size, FAST_BATCH) - unstarted
        return min(free - unstarted, self.settings.batch_size)

    def _gather(self, first: Claim) -> tuple[list[Claim], Claim | None]:
        """Take more ready claims to share a transaction, while their types declare
        ``share_transaction`` and are known to be fast, and the batch's expected handler
        time stays within SHARED_TRANSACTION_SECONDS (which bounds how long a batch holds
        SQLite's write lock).

        Returns the batch, and a claim taken that must run on its own.
        """
        batch = [first]
        if not self._fast(first.action_type):
            return batch, None
        expected = self.handler_seconds[first.action_type]
        while len(batch) < FAST_BATCH and expected < SHARED_TRANSACTION_SECONDS:
            try:
                claim = self.ready.get_nowait()
            except queue_module.Empty:
                break
            if claim is None:  # a stop sentinel belongs to whichever runner comes next
                self.ready.put(None)
                break
            if not self._fast(claim.action_type):
                return batch, claim
            batch.append(claim)
            expected += self.handler_seconds[claim.action_type]
        return batch, None

    def _fast(self, action_type: str) -> bool:
        """Declared shareable and known to be fast: may share a transaction."""
        seconds = self.handler_seconds.get(action_type)
        return (seconds is not None and seconds < FAST_HANDLER_SECONDS
                and self.registry.routes[action_type].spec.share_transaction)

    def _start(self, claims: list[Claim]) -> list[_Held]:
        """Mark claims started, leaving out any handed back meanwhile (see _heartbeat)."""
        now = time.monotonic()
        started = []
        with self.lock:
            for claim in claims:
                held = self.held.get(_key(claim))
                if held is None:
                    continue
                held.started = True
                if len(claims) == 1:
                    held.cancelled = threading.Event()
                if held.timeout is not None:
                    held.deadline = now + held.timeout
                started.append(held)
            if started:
                self.busy += 1
        if self.observer is not None:
            for held in started:
                self.observer.started(held.claim)
        return started

    def _run_group(self, candidates: list[Claim]) -> None:
        started = self._start(candidates)
        if not started:
            return
        claims = [held.claim for held in started]
        try:
            pairs = [(c, c.proof_mode or self.options.proof_mode or self.flags.proof_mode)
                     for c in claims]
            if len(pairs) == 1:
                outcomes = [self.dispatcher.run(*pairs[0], started[0].cancelled)]
            else:
                outcomes = self.dispatcher.run_batch(pairs)
            for outcome in outcomes:
                self._report(outcome)
        except DBAPIError as exc:  # the database went away or is full: one line says it
            log.warning("action(s) %s: could not record the outcome (database error: %s); "
                        "the lease will expire and they will be retried",
                        ", ".join(str(c.id) for c in claims), database_problem(exc))
            self.counts["unrecorded"] += len(claims)
        except BaseException:  # a runner thread must outlive anything a handler raises
            log.exception("action(s) %s: could not record the outcome; the lease will expire "
                          "and they will be retried", ", ".join(str(c.id) for c in claims))
            self.counts["unrecorded"] += len(claims)
        finally:
            with self.lock:
                for claim in claims:
                    self.held.pop(_key(claim), None)
                self.busy -= 1
            self.wake.set()

    def _report(self, outcome: Outcome) -> None:
        claim = outcome.claim
        word = outcome.status.value if outcome.status else "LEASE LOST"
        self.counts[word] += 1
        previous = self.handler_seconds.get(claim.action_type, outcome.seconds)
        self.handler_seconds[claim.action_type] = 0.8 * previous + 0.2 * outcome.seconds
        if self.observer is not None:
            self.observer.finished(outcome)
        if outcome.status is Status.SUCCESS and not log.isEnabledFor(logging.DEBUG):
            return
        level = logging.DEBUG if outcome.status is Status.SUCCESS else logging.WARNING
        log.log(level, "action %s %s attempt %s/%s: %s in %.1f ms%s", claim.id,
                claim.action_type, claim.attempt, claim.max_attempts, word,
                outcome.seconds * 1000, f" ({outcome.error})" if outcome.error else "",
                extra=self._fields(claim.id, word.lower().replace(" ", "_"), claim,
                                   duration_ms=round(outcome.seconds * 1000, 3)))

    def _fields(self, action_id: int, event: str, claim: Claim | None = None,
                duration_ms: float | None = None) -> dict[str, object]:
        """The fields of a log line about one action (see :mod:`aol_core.logformat`)."""
        fields: dict[str, object] = {"worker": self.name, "action_id": action_id,
                                     "event": event}
        if claim is not None:
            fields.update(action_type=claim.action_type, attempt=claim.attempt)
        if duration_ms is not None:
            fields["duration_ms"] = duration_ms
        return fields

    def _summarise(self) -> None:
        """Every heartbeat with activity: what was done since the last one."""
        now = time.monotonic()
        counts = Counter(dict(self.counts))  # copied at once: runners add outcomes
        done = counts - self.reported
        if done:
            rate = sum(done.values()) / max(now - self.reported_at, 1e-9)
            log.info("%s in the last %.0f s (%.1f actions/s); %d held now",
                     ", ".join(f"{n} {k}" for k, n in sorted(done.items())),
                     now - self.reported_at, rate, len(self.held))
        self.reported, self.reported_at = counts, now

    def _heartbeat(self, stop: threading.Event) -> None:
        """Every third of a lease: renew the registration and the running actions' leases,
        and hand back claims that have not started. Every poll interval in between: look
        whether a running action was cancelled or taken over, for ``context.cancelled``."""
        interval = self.settings.lease_seconds / 3
        last_beat = time.monotonic()
        while not stop.wait(min(self.settings.poll_interval, interval)):
            try:
                self._notice_lost()
                if time.monotonic() - last_beat >= interval:
                    last_beat = time.monotonic()
                    self._beat(interval)
            except Exception as exc:
                problem = database_problem(exc) if isinstance(exc, DBAPIError) else exc
                log.warning("heartbeat failed (%s); will try again", problem)

    def _beat(self, interval: float) -> None:
        now, clock = utcnow(), time.monotonic()
        with self.lock:
            keep = [h.claim for h in self.held.values() if h.started and not self._overdue(h)]
            stale = [h.claim for h in self.held.values()
                     if not h.started and clock - h.claimed_at >= interval]
            for claim in stale:  # the runners skip them from now on
                del self.held[_key(claim)]
        with self.engine.begin() as conn:
            registered = worker_registry.heartbeat(conn, self.identity, now, self.alive_for)
            queue.extend_leases(conn, self.name, keep, now + self.alive_for)
        if not registered:
            log.error("worker %s: the name is registered to another worker now (this one was "
                      "silent longer than its lease: frozen or cut off); stopping", self.name)
            self.request_stop("name taken over")
        if stale:
            handed = queue.release(self.engine, stale, now)
            log.info("handed back %d claimed action(s) that could not start in time", handed)
        self._summarise()

    def _notice_lost(self) -> None:
        """Signal running handlers whose action is no longer theirs (a read, only while
        something runs)."""
        with self.lock:
            watched = [(h.claim, h.cancelled) for h in self.held.values()
                       if h.cancelled is not None and not h.cancelled.is_set()]
        if not watched:
            return
        with self.engine.connect() as conn:
            held = queue.still_held(conn, [claim for claim, _ in watched])
        for claim, cancelled in watched:
            if _key(claim) not in held:
                cancelled.set()

    def _overdue(self, held: _Held) -> bool:
        if held.deadline is None or time.monotonic() < held.deadline:
            return False
        if not held.overdue_reported:
            held.overdue_reported = True
            log.warning("action %s exceeded its timeout; its lease is no longer extended",
                        held.claim.id, extra=self._fields(held.claim.id, "timeout", held.claim))
        return True

    # --- stopping -----------------------------------------------------------------------

    def _finish(self, runners: list[threading.Thread]) -> None:
        unstarted: list[Claim] = []
        while True:
            try:
                claim = self.ready.get_nowait()
            except queue_module.Empty:
                break
            if claim is not None:
                unstarted.append(claim)
        if unstarted:
            with self.lock:
                for claim in unstarted:
                    self.held.pop(_key(claim), None)
            try:
                handed = queue.release(self.engine, unstarted, utcnow())
                log.info("handed back %d claimed action(s) that had not started", handed)
            except Exception as exc:
                log.warning("could not hand back %d unstarted action(s) (%s); their leases "
                            "will expire", len(unstarted), exc)
        for _ in runners:
            self.ready.put(None)
        deadline = time.monotonic() + self.settings.grace_seconds
        for thread in runners:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in runners):
            log.warning("%d action(s) still running after the %.0f s grace period; leaving "
                        "them to lease expiry", len(self.held), self.settings.grace_seconds)

    def _versions(self) -> dict[str, str]:
        return {
            "aol-core": version("aol-core"),
            "python": platform.python_version(),
            "sqlalchemy": sqlalchemy.__version__,
            **{p.distribution: p.version for p in self.registry.plugins if p.status == "loaded"},
        }

    def _announce(self) -> None:
        s, o = self.settings, self.options
        log.info("worker %s started on %s (%s)", self.name, mask_url(self.engine.url),
                 self.driver.name, extra={"worker": self.name, "event": "started"})
        for plugin in self.registry.plugins:
            log.info("plugin %s: %s%s", plugin.label, plugin.status,
                     f" [{', '.join(plugin.action_types)}]" if plugin.action_types else
                     f" ({plugin.error})" if plugin.error else "")
        for warning in self.registry.warnings:
            log.warning("%s", warning)
        if self.registry.broken:
            log.warning("running DEGRADED: %d broken plugin(s)", len(self.registry.broken))
        log.info("runs %s; concurrency %d, batch %d, lease %.0f s, poll %.2f s, proof %s%s",
                 ", ".join(self.action_types) or "no action types", o.concurrency, s.batch_size,
                 s.lease_seconds, s.poll_interval, "on" if o.proof_mode else "per flags",
                 ", burst" if o.burst else "")
