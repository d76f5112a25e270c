"""Run claimed actions: call each one's plugin handler in a transaction and settle the outcome.

On return a handler's writes and SUCCESS commit together; on an exception they roll back and
the failure is recorded instead. Every settlement checks the fencing token, and an attempt's
artifacts are stored only with a settlement that passed it.

Actions whose type declares ``share_transaction`` (their handlers only touch the database)
may run several to a transaction (``run_batch``) and are settled by one statement: the
commit, the dearest part of an action on any database, is shared. The batch first confirms
every lease under lock (row locks on PostgreSQL, the write lock on SQLite), so no settle
can find a lease lost later; each handler then runs in a session and savepoint of its own,
so one that fails, rolls back or empties its session undoes only its own writes and the
batch goes on. Only if the shared transaction itself fails (its commit, say) is nothing
stored, and the batch's actions run again one at a time: delivery stays at least once, and
handlers that only touch the database lose nothing by running again.
"""

from __future__ import annotations

import threading
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


class _SharedTransactionFailed(Exception):
    """A batch's shared transaction cannot be committed as it stands."""


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
        #: sessions on a batch's shared connection, each inside a savepoint of its own
        self.shared_sessions = sessionmaker(expire_on_commit=False,
                                            join_transaction_mode="create_savepoint")
        for factory in (self.sessions, self.shared_sessions):
            event.listen(factory, "before_commit", _forbid_handler_commit)
            event.listen(factory, "after_soft_rollback", _note_rollback)

    def run(self, claim: Claim, proof_mode: bool,
            cancelled: threading.Event | None = None) -> Outcome:
        """Run one action in a transaction of its own; ``cancelled`` backs the handler's
        ``context.cancelled`` (the worker sets it when the action is taken from it)."""
        context = self._context(claim, cancelled)
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
                queue.write_records(conn, self.worker, [_logs_only(claim, context)], utcnow())
            return Outcome(claim, None, time.monotonic() - started, "lease lost")
        except Exception as exc:
            with self.engine.begin() as conn:
                outcome, record = self._settle_failure(conn, claim, context, exc, started)
                queue.write_records(conn, self.worker, [record], utcnow())
            return outcome

    def run_batch(self, batch: Sequence[tuple[Claim, bool]]) -> list[Outcome]:
        """Run ``(claim, proof_mode)`` pairs in one transaction and settle them together.

        Claims whose lease no longer holds when the batch starts are not run. Each handler
        runs once: a neighbour failing or losing its lease never runs it again; only a
        failure of the shared transaction itself does (see the module text).
        """
        try:
            with self.engine.connect() as conn, conn.begin():
                return self._run_shared(conn, batch)
        except (_SharedTransactionFailed, DBAPIError):
            return [self.run(claim, proof_mode) for claim, proof_mode in batch]

    def _run_shared(
        self, conn: Connection, batch: Sequence[tuple[Claim, bool]]
    ) -> list[Outcome]:
        held = queue.confirm_leases(conn, [claim for claim, _ in batch])
        outcomes: list[Outcome] = []
        records: list[queue.AttemptRecord] = []
        succeeded: list[tuple[Claim, Any]] = []
        session = self.shared_sessions(bind=conn)
        for claim, proof_mode in batch:
            context = self._context(claim)
            if (claim.id, claim.fencing_token) not in held:
                context.logs.append(_lost_entry(claim))
                records.append(_logs_only(claim, context))
                outcomes.append(Outcome(claim, None, 0.0, "lease lost"))
                continue
            started = time.monotonic()
            result, problem = self._run_isolated(conn, session, claim, proof_mode, context)
            if problem is not None:
                outcome, record = self._settle_failure(conn, claim, context, problem, started)
                if outcome.status is None:  # cannot happen while the leases are locked
                    raise _SharedTransactionFailed
            else:
                seconds = time.monotonic() - started
                _log_success(context, seconds, proof_mode)
                succeeded.append((claim, result))
                outcome, record = Outcome(claim, Status.SUCCESS, seconds), _record(claim, context)
            outcomes.append(outcome)
            records.append(record)
        now = utcnow()
        if not queue.settle_successes(conn, succeeded, now):
            raise _SharedTransactionFailed  # cannot happen while the leases are locked
        queue.write_records(conn, self.worker, records, now)
        return outcomes

    def _run_isolated(
        self, conn: Connection, session: Session, claim: Claim, proof_mode: bool,
        context: ActionContext,
    ) -> tuple[Any, Exception | None]:
        """Run one handler of a batch in a savepoint of its own: its writes are flushed
        and the savepoint released on return, rolled back on failure. The session is
        closed after each handler (cheaper than a new one), so the next starts from a
        clean session: nothing one handler leaves in it — pending objects, a rollback,
        ``expunge_all()`` — reaches another's writes. The savepoint opens when the handler
        first uses the session: one that never touches the database costs no statement."""
        try:
            result = self._call(session, claim, proof_mode, context)
            if session.in_transaction():
                session.info[_SETTLING] = True
                session.commit()  # flushes, then releases its savepoint
            return result, None
        except DBAPIError as exc:
            if conn.invalidated:  # the connection is gone: nothing left to settle on
                raise
            session.rollback()  # to its savepoint: its own writes only
            return None, exc
        except Exception as exc:
            session.rollback()
            return None, exc
        finally:
            session.close()

    def _context(self, claim: Claim, cancelled: threading.Event | None = None) -> ActionContext:
        return ActionContext(claim.id, claim.action_type, claim.attempt, claim.max_attempts,
                             claim.idempotency_key, self.worker, cancel_signal=cancelled,
                             max_artifact_bytes=self.settings.max_artifact_bytes,
                             slot=claim.schedule_slot)

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
        if isinstance(exc, Snooze):
            exc = _unreachable_snooze(exc, utcnow()) or exc
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
        seconds = time.monotonic() - started
        if not settled:  # the artifacts belong to the attempt that holds the action now
            context.logs.append(_lost_entry(claim))
            return Outcome(claim, None, seconds, error), _logs_only(claim, context)
        return Outcome(claim, status, seconds, error), _record(claim, context)

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
        seconds = time.monotonic() - started
        if status is None:  # the artifacts belong to the attempt that holds the action now
            context.logs.append(_lost_entry(claim))
            return Outcome(claim, None, seconds, note), _logs_only(claim, context)
        return Outcome(claim, status, seconds, note), _record(claim, context)

    def _retry_at(self, claim: Claim, exc: Exception, now: datetime) -> datetime:
        delay = exc.delay if isinstance(exc, RetryableError) else None
        if delay is None:
            delay = queue.backoff_seconds(claim.attempt, self.settings)
        return now + timedelta(seconds=delay)


def _unreachable_snooze(exc: Snooze, now: datetime) -> PermanentError | None:
    """A snooze further from now than any time AOL accepts (``limits.MAX_SECONDS``, past or
    future) cannot be kept as a due time: the attempt fails for good, saying so, instead of
    the worker failing to compute the date and leaving the action to its lease."""
    delay = exc.until if isinstance(exc.until, timedelta) else exc.until - now
    if abs(delay) <= timedelta(seconds=limits.MAX_SECONDS):
        return None
    return PermanentError(f"a snooze of {delay} is beyond the {limits.MAX_SECONDS} s "
                          "AOL can wait an action for")


def _fate(claim: Claim, status: Status, retry_at: datetime | None) -> str:
    if status is Status.FAILED:
        return "permanent failure, not retried"
    if status is Status.DLQ:
        return f"attempts used up ({claim.attempt} of {claim.max_attempts}), moved to DLQ"
    return f"will retry at {retry_at:%Y-%m-%d %H:%M:%S} UTC"


def _record(claim: Claim, context: ActionContext) -> queue.AttemptRecord:
    """A settled attempt's logs and artifacts (call only after its fenced settle passed)."""
    return queue.AttemptRecord(claim, context.logs, context.artifacts.values())


def _logs_only(claim: Claim, context: ActionContext) -> queue.AttemptRecord:
    """An attempt whose outcome was refused keeps its log lines, not its artifacts."""
    return queue.AttemptRecord(claim, context.logs)


def _log_success(context: ActionContext, seconds: float, proof_mode: bool) -> None:
    context.log("INFO", f"attempt {context.attempt} succeeded in {seconds * 1000:.1f} ms"
                + (" (proof mode)" if proof_mode else ""))


def _lost_entry(claim: Claim) -> LogEntry:
    return LogEntry(
        "WARNING",
        f"attempt {claim.attempt} lost its lease before finishing; its outcome and writes "
        "were discarded (the action was cancelled or failed by an operator, or another "
        "worker owns it now)",
    )




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
