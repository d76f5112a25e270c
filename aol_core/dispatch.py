"""Run claimed actions: call each one's plugin handler in a transaction and settle the outcome.

On return a handler's writes and SUCCESS commit together; on an exception they roll back and
the failure is recorded instead. Every settlement checks the fencing token.

Actions whose handlers are known to be fast run several to a transaction (``run_batch``)
and are settled by one statement: the commit, the dearest part of an action on any database,
is shared. A handler that fails without having written anything leaves nothing to undo, so
its batch goes on; one that fails after writing rolls the batch back, and each action of it
runs again in a transaction of its own. A crash costs a batch re-run rather than one action;
delivery stays at least once and each handler's writes stay atomic with its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from aol_core import limits, queue
from aol_core.config import Settings
from aol_core.context import ActionContext, LogEntry
from aol_core.db import writes_so_far
from aol_core.drivers import Claim
from aol_core.errors import Hold, InvalidPayload, PermanentError, RetryableError, Snooze
from aol_core.models import Status
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import utcnow

_SETTLING = "aol_settling"
_ROLLED_BACK = "aol_rolled_back"


class LeaseLost(Exception):
    """The claim's fencing token no longer matches: another worker owns the action now."""


class HandlerCommitted(Exception):
    """A handler called ``session.commit()``, which would split its writes from the outcome."""


class HandlerRolledBack(Exception):
    """A handler called ``session.rollback()``: it would silently drop writes it cannot see."""


class _Unbatchable(Exception):
    """Something in a batch needs the one-action path (a lost lease, a database error)."""


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt; ``status`` is None when the lease was lost.
    ``seconds`` is the time spent in the handler."""

    claim: Claim
    status: Status | None
    seconds: float
    error: str | None = None


class Dispatcher:
    def __init__(
        self, engine: Engine, registry: PluginRegistry, settings: Settings, worker: str
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.settings = settings
        self.worker = worker
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        event.listen(self.sessions, "before_commit", _forbid_handler_commit)
        event.listen(self.sessions, "after_soft_rollback", _note_rollback)

    def run(self, claim: Claim, proof_mode: bool) -> Outcome:
        """Run one action in a transaction of its own."""
        context = self._context(claim)
        started = time.monotonic()
        try:
            with self.sessions() as session, session.begin():
                result = self._call(session, claim, proof_mode, context)
                seconds = time.monotonic() - started
                now = utcnow()
                conn = session.connection()
                if not queue.settle(conn, claim, Status.SUCCESS, now=now, result=result):
                    raise LeaseLost
                _log_success(context, seconds, proof_mode)
                queue.write_records(conn, self.worker, [_record(claim, context)], now)
                session.info[_SETTLING] = True
            return Outcome(claim, Status.SUCCESS, seconds)
        except LeaseLost:
            context.logs.append(_lost_entry(claim))
            with self.engine.begin() as conn:
                queue.write_records(conn, self.worker,
                                    [queue.AttemptRecord(claim, context.logs)], utcnow())
            return Outcome(claim, None, time.monotonic() - started, "lease lost")
        except Exception as exc:
            with self.engine.begin() as conn:
                outcome, record = self._settle_failure(conn, claim, context, exc, started)
                queue.write_records(conn, self.worker, [record], utcnow())
            return outcome

    def run_batch(self, batch: Sequence[tuple[Claim, bool]]) -> list[Outcome]:
        """Run ``(claim, proof_mode)`` pairs in one transaction and settle them together.

        Anything out of the ordinary (a handler failing after it wrote, a lost lease, a
        database error) rolls the whole batch back and runs each action on its own instead.
        """
        outcomes: list[Outcome] = []
        try:
            with self.sessions() as session, session.begin():
                conn = session.connection()
                succeeded: list[tuple[Claim, Any]] = []
                records: list[queue.AttemptRecord] = []
                failed: list[tuple[Claim, ActionContext, Exception, float]] = []
                for claim, proof_mode in batch:
                    context = self._context(claim)
                    started = time.monotonic()
                    writes = writes_so_far(conn)
                    try:
                        result = self._call(session, claim, proof_mode, context)
                    except (HandlerCommitted, HandlerRolledBack, DBAPIError):
                        raise _Unbatchable from None
                    except Exception as exc:
                        if writes_so_far(conn) != writes or _has_changes(session):
                            raise _Unbatchable from None
                        failed.append((claim, context, exc, started))
                        continue
                    seconds = time.monotonic() - started
                    _log_success(context, seconds, proof_mode)
                    succeeded.append((claim, result))
                    records.append(_record(claim, context))
                    outcomes.append(Outcome(claim, Status.SUCCESS, seconds))
                now = utcnow()
                if not queue.settle_successes(conn, succeeded, now):
                    raise _Unbatchable
                for claim, context, problem, started in failed:
                    outcome, record = self._settle_failure(conn, claim, context, problem,
                                                           started)
                    if outcome.status is None:
                        raise _Unbatchable
                    outcomes.append(outcome)
                    records.append(record)
                queue.write_records(conn, self.worker, records, now)
                session.info[_SETTLING] = True
        except (_Unbatchable, DBAPIError):  # DBAPIError: the shared settle or commit failed
            return [self.run(claim, proof_mode) for claim, proof_mode in batch]
        return outcomes

    def _context(self, claim: Claim) -> ActionContext:
        return ActionContext(claim.id, claim.action_type, claim.attempt, claim.max_attempts,
                             claim.idempotency_key, self.worker,
                             max_artifact_bytes=self.settings.max_artifact_bytes)

    def _call(
        self, session: Session, claim: Claim, proof_mode: bool, context: ActionContext
    ) -> Any:
        route = self.registry.routes[claim.action_type]
        route.spec.validate(claim.payload)
        payload = {**claim.payload, "idempotency_key": claim.idempotency_key}
        session.info.pop(_ROLLED_BACK, None)
        result = route.handler(claim.action_type, session, payload, proof_mode, context)
        if session.info.pop(_ROLLED_BACK, False):
            raise HandlerRolledBack(
                "handlers must not roll back: raise instead, and AOL rolls their writes back"
            )
        limits.check_result(result, max_bytes=self.settings.max_payload_bytes,
                            max_depth=self.settings.max_payload_depth)
        return result

    def _settle_failure(
        self, conn: Connection, claim: Claim, context: ActionContext, exc: Exception,
        started: float,
    ) -> tuple[Outcome, queue.AttemptRecord]:
        """Record a failed attempt as FAILED, RETRY (with its backoff) or DLQ."""
        if isinstance(exc, Snooze | Hold):
            return self._set_aside(conn, claim, context, exc, started)
        permanent = isinstance(
            exc, PermanentError | InvalidPayload | HandlerCommitted | HandlerRolledBack
        )
        status = queue.failure_status(claim, permanent)
        error = limits.describe_error(exc)
        now = utcnow()
        retry_at = self._retry_at(claim, exc, now) if status is Status.RETRY else None
        message = f"attempt {claim.attempt} failed: {error}; {_fate(claim, status, retry_at)}"
        if not isinstance(exc, PermanentError | InvalidPayload | RetryableError):
            message += "\n" + limits.describe_traceback(exc)
        context.logs.append(LogEntry("ERROR", limits.storable_text(message,
                                                                   limits.MAX_LOG_LINE_CHARS)))
        settled = queue.settle(conn, claim, status, now=now, error=error, retry_at=retry_at)
        if not settled:
            context.logs.append(_lost_entry(claim))
        seconds = time.monotonic() - started
        return (Outcome(claim, status if settled else None, seconds, error),
                _record(claim, context))

    def _set_aside(
        self, conn: Connection, claim: Claim, context: ActionContext, exc: Snooze | Hold,
        started: float,
    ) -> tuple[Outcome, queue.AttemptRecord]:
        """A handler's Snooze (back to waiting, attempt given back) or Hold (HELD for a
        person): not failures, so neither counts against the action's attempts nor retries."""
        now = utcnow()
        status: Status | None
        if isinstance(exc, Snooze):
            until = exc.due(now)
            status = queue.snooze_claim(conn, claim, until, now)
            note = f"snoozed until {until:%Y-%m-%d %H:%M:%S} UTC" + (
                f": {exc.reason}" if exc.reason else "")
            context.log("INFO", f"attempt {claim.attempt} {note}; the attempt is given back")
        else:
            status = Status.HELD if queue.hold_claim(conn, claim, exc.reason, now) else None
            note = f"held: {exc.reason}"
            context.log("WARNING", f"attempt {claim.attempt} {note}; waits for a person "
                        f"(aol actions release|resolve {claim.id})")
        if status is None:
            context.logs.append(_lost_entry(claim))
        seconds = time.monotonic() - started
        return Outcome(claim, status, seconds, note), _record(claim, context)

    def _retry_at(self, claim: Claim, exc: Exception, now: datetime) -> datetime:
        delay = exc.delay if isinstance(exc, RetryableError) else None
        if delay is None:
            delay = queue.backoff_seconds(claim.attempt, self.settings)
        return now + timedelta(seconds=delay)


def _fate(claim: Claim, status: Status, retry_at: datetime | None) -> str:
    if status is Status.FAILED:
        return "permanent failure, not retried"
    if status is Status.DLQ:
        return f"attempts used up ({claim.attempt} of {claim.max_attempts}), moved to DLQ"
    return f"will retry at {retry_at:%Y-%m-%d %H:%M:%S} UTC"


def _record(claim: Claim, context: ActionContext) -> queue.AttemptRecord:
    return queue.AttemptRecord(claim, context.logs, context.artifacts.values())


def _log_success(context: ActionContext, seconds: float, proof_mode: bool) -> None:
    context.log("INFO", f"attempt {context.attempt} succeeded in {seconds * 1000:.1f} ms"
                + (" (proof mode)" if proof_mode else ""))


def _lost_entry(claim: Claim) -> LogEntry:
    return LogEntry(
        "WARNING",
        f"attempt {claim.attempt} lost its lease before finishing; its outcome and writes "
        "were discarded (another worker owns the action)",
    )


def _has_changes(session: Session) -> bool:
    """Objects added, changed or deleted but not yet flushed."""
    return bool(session.new or session.dirty or session.deleted)


def _note_rollback(session: Session, previous: SessionTransaction) -> None:
    if not previous.nested:  # rolling back to a savepoint is the handler's own business
        session.info[_ROLLED_BACK] = True


def _forbid_handler_commit(session: Session) -> None:
    if session.in_nested_transaction():  # releasing a savepoint is fine
        return
    if not session.info.pop(_SETTLING, False):
        raise HandlerCommitted(
            "handlers must not commit: AOL commits their writes together with the outcome"
        )
