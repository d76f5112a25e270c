"""Run one claimed action: call its plugin's handler in a transaction and settle the outcome.

On return the handler's writes and SUCCESS commit together; on an exception they roll back
and the failure is recorded in a fresh transaction. Both commits check the fencing token.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from aol_core import queue
from aol_core.config import Settings
from aol_core.context import ActionContext, LogEntry
from aol_core.drivers import Claim
from aol_core.errors import InvalidPayload, PermanentError, RetryableError
from aol_core.models import Status
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import utcnow

_SETTLING = "aol_settling"


class LeaseLost(Exception):
    """The claim's fencing token no longer matches: another worker owns the action now."""


class HandlerCommitted(Exception):
    """A handler called ``session.commit()``, which would split its writes from the outcome."""


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt; ``status`` is None when the lease was lost."""

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

    def run(self, claim: Claim, proof_mode: bool) -> Outcome:
        route = self.registry.routes[claim.action_type]
        context = ActionContext(
            claim.id, claim.action_type, claim.attempt, claim.max_attempts,
            claim.idempotency_key, self.worker,
        )
        payload = {**claim.payload, "idempotency_key": claim.idempotency_key}
        started = time.monotonic()
        try:
            route.spec.validate(claim.payload)
            with self.sessions() as session, session.begin():
                result = route.handler(claim.action_type, session, payload, proof_mode, context)
                _require_json(result)
                seconds = time.monotonic() - started
                now = utcnow()
                conn = session.connection()
                if not queue.settle(conn, claim, Status.SUCCESS, now=now, result=result):
                    raise LeaseLost
                context.log("INFO", f"attempt {claim.attempt} succeeded in {seconds * 1000:.1f} ms"
                            + (" (proof mode)" if proof_mode else ""))
                queue.write_records(conn, claim, self.worker, context.logs,
                                    context.artifacts.values(), now)
                session.info[_SETTLING] = True
            return Outcome(claim, Status.SUCCESS, seconds)
        except LeaseLost:
            return self._lease_lost(claim, context, started)
        except Exception as exc:
            return self._failed(claim, context, exc, started)

    def _failed(
        self, claim: Claim, context: ActionContext, exc: Exception, started: float
    ) -> Outcome:
        permanent = isinstance(exc, PermanentError | InvalidPayload | HandlerCommitted)
        status = queue.failure_status(claim, permanent)
        error = f"{type(exc).__name__}: {exc}"
        now = utcnow()
        retry_at = None
        if status is Status.RETRY:
            delay = exc.delay if isinstance(exc, RetryableError) and exc.delay is not None else (
                queue.backoff_seconds(claim.attempt, self.settings))
            retry_at = now + timedelta(seconds=delay)
        detail = {
            Status.FAILED: "permanent failure, not retried",
            Status.DLQ: f"attempts used up ({claim.attempt} of {claim.max_attempts}), moved to DLQ",
            Status.RETRY: f"will retry at {retry_at:%Y-%m-%d %H:%M:%S} UTC" if retry_at else "",
        }[status]
        message = f"attempt {claim.attempt} failed: {error}; {detail}"
        if not isinstance(exc, PermanentError | InvalidPayload | RetryableError):
            message += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        context.logs.append(LogEntry("ERROR", message))
        with self.engine.begin() as conn:
            settled = queue.settle(conn, claim, status, now=now, error=error, retry_at=retry_at)
            if not settled:
                context.logs.append(_lost_entry(claim))
            queue.write_records(conn, claim, self.worker, context.logs,
                                context.artifacts.values(), now)
        return Outcome(claim, status if settled else None, time.monotonic() - started, error)

    def _lease_lost(self, claim: Claim, context: ActionContext, started: float) -> Outcome:
        context.logs.append(_lost_entry(claim))
        with self.engine.begin() as conn:
            queue.write_records(conn, claim, self.worker, context.logs, (), utcnow())
        return Outcome(claim, None, time.monotonic() - started, "lease lost")


def _lost_entry(claim: Claim) -> LogEntry:
    return LogEntry(
        "WARNING",
        f"attempt {claim.attempt} lost its lease before finishing; its outcome and writes "
        "were discarded (another worker owns the action)",
    )


def _require_json(result: Any) -> None:
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"handler returned a value JSON cannot hold: {exc}") from None


def _forbid_handler_commit(session: Session) -> None:
    if not session.info.pop(_SETTLING, False):
        raise HandlerCommitted(
            "handlers must not commit: AOL commits their writes together with the outcome"
        )
