"""The original AOL's names (``aicmo.orchestration``), for code written against it.

Its behaviour is kept where it was sound: ``enqueue_action`` and the ``mark_*`` helpers
commit by default, naive times mean UTC, unknown action ids are ignored. Where it was not,
AOL's own rules apply: an existing idempotency key returns its action instead of raising,
payloads are validated at enqueue, transitions are guarded, and workers claim actions with
leases, so nothing here hands out actions to run. README.md "Migrating from the original"
lists the differences.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, literal
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, synonym

from aol_core import limits
from aol_core.context import normalize_level
from aol_core.db import create_engine
from aol_core.embed import run_worker
from aol_core.errors import AOLError
from aol_core.models import (
    CLAIMABLE,
    Action,
    ExecutionLog,
    Status,
    UTCDateTime,
    actions_table,
    control_table,
    logs_table,
)
from aol_core.queue import _transition, enqueue, fail_action
from aol_core.timeutil import utcnow

log = logging.getLogger("aol.compat")

#: the original's retry rule for ``mark_retry``: DLQ at this many attempts (or at the
#: action's own ``max_attempts``, if lower), otherwise due again after the delay
MAX_RETRIES = 3
RETRY_DELAY_SECONDS = 5

#: the original's exit code of ``AOLDaemon.run`` when the daemon could not run
EXIT_FAILURE = 1


class DequeueRemoved(AOLError):
    """``dequeue_next`` handed out actions without claiming them, so two daemons ran them."""


def as_utc(value: datetime | None) -> datetime | None:
    """The original's callers passed naive UTC (``datetime.utcnow()``); aware times stay."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def original_level(level: str) -> str:
    """The original's log levels as AOL's: its own SUCCESS is INFO (the status tells success)."""
    name = level.upper()
    return "INFO" if name == "SUCCESS" else normalize_level(name)


#: the longest artifact_ref AOL stores; the original's column was unbounded text
ARTIFACT_REF_LENGTH = 512


def fitted_artifact(message: str, artifact_ref: str | None) -> tuple[str, str | None]:
    """A log line's message and artifact_ref as AOL can store them: a ref longer than AOL's
    column (the original's was unbounded) moves, whole, into the message, so nothing is cut."""
    if artifact_ref is None or len(artifact_ref) <= ARTIFACT_REF_LENGTH:
        return message, artifact_ref
    return f"{message} [artifact_ref: {artifact_ref}]", None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class _OriginalNames(DeclarativeBase):
    """A registry of its own: AOL's tables mapped a second time under the original's
    attribute names, leaving AOL's own mappings untouched. Read actions and logs through
    them and write through :class:`ActionQueue`, whose transitions are guarded; the
    switches of :class:`AOLControlFlags` may be set as the original's callers did."""


class AOLAction(_OriginalNames):
    __table__ = actions_table

    id: Mapped[int]
    idempotency_key: Mapped[str]
    action_type: Mapped[str]
    payload: Mapped[dict[str, Any]]
    status: Mapped[str]
    attempts: Mapped[int]
    max_attempts: Mapped[int]
    last_error: Mapped[str | None]
    result: Mapped[Any]
    not_before: Mapped[datetime]
    created_at: Mapped[datetime]
    not_before_utc: Mapped[datetime] = synonym("not_before")
    created_at_utc: Mapped[datetime] = synonym("created_at")

    @property
    def payload_json(self) -> str:
        return json.dumps(self.payload)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "idempotency_key": self.idempotency_key,
            "action_type": self.action_type,
            "payload_json": self.payload_json,
            "status": self.status,
            "not_before_utc": _iso(self.not_before),
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at_utc": _iso(self.created_at),
        }


class AOLExecutionLog(_OriginalNames):
    __table__ = logs_table

    id: Mapped[int]
    action_id: Mapped[int]
    ts: Mapped[datetime]
    level: Mapped[str]
    message: Mapped[str]
    artifact_ref: Mapped[str | None]
    artifact_sha256: Mapped[str | None]
    ts_utc: Mapped[datetime] = synonym("ts")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action_id": self.action_id,
            "ts_utc": _iso(self.ts),
            "level": self.level,
            "message": self.message,
            "artifact_ref": self.artifact_ref,
            "artifact_sha256": self.artifact_sha256,
        }


class AOLControlFlags(_OriginalNames):
    """The one row of switches (``aol control``); killed stops every worker."""

    __table__ = control_table

    id: Mapped[int]
    paused: Mapped[bool]
    killed: Mapped[bool]
    proof_mode: Mapped[bool]
    updated_at: Mapped[datetime]
    updated_at_utc: Mapped[datetime] = synonym("updated_at")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "paused": self.paused,
            "killed": self.killed,
            "proof_mode": self.proof_mode,
            "updated_at_utc": _iso(self.updated_at),
        }


def _finish(session: Session, commit: bool, action: AOLAction | None = None) -> None:
    """Commit if asked. The action goes out of the session first, loaded, so the commit
    does not expire it: callers read it after closing their session, as they did."""
    if commit:
        if action is not None:
            session.expunge(action)
        session.commit()


def _reload(session: Session, action_id: int) -> AOLAction:
    action = session.get(AOLAction, action_id, populate_existing=True)
    assert action is not None
    return action


class ActionQueue:
    """The original's queue helpers. Each writes in ``session`` and, unless ``commit=False``,
    commits it (with whatever else the caller wrote in it), as the original did."""

    MAX_RETRIES = MAX_RETRIES
    RETRY_DELAY_SECONDS = RETRY_DELAY_SECONDS

    @staticmethod
    def enqueue_action(
        session: Session,
        action_type: str,
        payload: dict[str, Any] | None,
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
        *,
        commit: bool = True,
        force: bool = False,
        max_attempts: int | None = None,
    ) -> AOLAction:
        """Enqueue, or return the existing action for a known key (never an IntegrityError).

        ``not_before`` naive means UTC. ``force`` enqueues a type no plugin declares.
        """
        done = enqueue(
            session, action_type, {} if payload is None else payload,
            idempotency_key=idempotency_key, not_before=as_utc(not_before),
            max_attempts=max_attempts, force=force,
        )
        action = _reload(session, done.id)
        _finish(session, commit, action)
        return action

    @staticmethod
    def dequeue_next(session: Session, max_actions: int = 3) -> list[AOLAction]:
        raise DequeueRemoved(
            "ActionQueue.dequeue_next is gone: AOL workers claim actions with leases, so no "
            "two run one action; run `aol worker`, or aol_core.run_worker(engine) in-process"
        )

    @staticmethod
    def log_execution(
        session: Session,
        action_id: int,
        level: str,
        message: str,
        artifact_ref: str | None = None,
        artifact_sha256: str | None = None,
        *,
        commit: bool = True,
    ) -> None:
        """Add a line to an action's history. The original's level SUCCESS is stored as
        INFO (the action's status tells success); an unknown action id is ignored."""
        action = session.get(Action, action_id)
        if action is None:
            return
        message, artifact_ref = fitted_artifact(message, artifact_ref)
        session.add(
            ExecutionLog(
                action_id=action_id, attempt=action.attempts, ts=utcnow(),
                level=original_level(level),
                message=message, worker=None,
                artifact_ref=artifact_ref, artifact_sha256=artifact_sha256,
            )
        )
        _finish(session, commit)

    @staticmethod
    def mark_success(
        session: Session, action_id: int, notes: str | None = None, *, commit: bool = True
    ) -> AOLAction | None:
        """Mark a PENDING or RETRY action SUCCESS, ``notes`` as its result. An action a
        worker is running is settled by its handler, so RUNNING is refused."""
        if session.get(Action, action_id) is None:
            return None
        _transition(
            session, action_id, CLAIMABLE,
            {"status": Status.SUCCESS.value, "result": notes, "finished_at": utcnow()},
            "only PENDING or RETRY can be marked SUCCESS (a worker settles what it runs)",
            "marked SUCCESS by the caller" + (f": {notes}" if notes else ""),
        )
        action = _reload(session, action_id)
        _finish(session, commit, action)
        return action

    @staticmethod
    def mark_failed(
        session: Session, action_id: int, error: str, *, commit: bool = True
    ) -> AOLAction | None:
        """Fail an unfinished action permanently (an operator's decision)."""
        if session.get(Action, action_id) is None:
            return None
        fail_action(session, action_id, error)
        action = _reload(session, action_id)
        _finish(session, commit, action)
        return action

    @staticmethod
    def mark_retry(
        session: Session, action_id: int, error: str, *, commit: bool = True
    ) -> AOLAction | None:
        """Count a failed attempt of a PENDING or RETRY action: DLQ once it has had
        ``MAX_RETRIES`` attempts (or its own ``max_attempts``, if lower), else RETRY due in
        ``RETRY_DELAY_SECONDS``."""
        if session.get(Action, action_id) is None:
            return None
        now = literal(utcnow(), UTCDateTime())
        due = literal(utcnow() + timedelta(seconds=ActionQueue.RETRY_DELAY_SECONDS),
                      UTCDateTime())
        actions = actions_table.c
        limit = case((actions.max_attempts < ActionQueue.MAX_RETRIES, actions.max_attempts),
                     else_=ActionQueue.MAX_RETRIES)
        used_up = actions.attempts + 1 >= limit
        _transition(
            session, action_id, CLAIMABLE,
            {
                "attempts": actions.attempts + 1,
                "last_error": error,
                "status": case((used_up, Status.DLQ.value), else_=Status.RETRY.value),
                "finished_at": case((used_up, now), else_=None),
                "not_before": case((used_up, actions.not_before), else_=due),
            },
            "only PENDING or RETRY can be marked for retry (a worker retries what it runs)",
            f"retry requested by the caller: {error}",
        )
        action = _reload(session, action_id)
        _finish(session, commit, action)
        return action


class AOLDaemon:
    """The original's daemon, as an AOL worker in this process.

    ``run(max_ticks=None)`` runs until the kill switch or SIGTERM/SIGINT; with a number of
    ticks it runs what is due and returns (a worker has no ticks: it claims continuously).
    Exit codes are the original's: 0 when it ran and stopped cleanly (the kill switch
    included), 1 when it could not run (no schema, database unreachable, broken plugins).
    """

    def __init__(self, db_url: str, proof_mode: bool = False, concurrency: int = 1) -> None:
        self.db_url = db_url
        self.proof_mode = proof_mode
        self.concurrency = concurrency

    def run(self, max_ticks: int | None = None) -> int:
        engine = create_engine(self.db_url, pool_size=self.concurrency + 3)
        try:
            return run_worker(
                engine, burst=bool(max_ticks), proof_mode=self.proof_mode,
                concurrency=self.concurrency, handle_signals=True,
            )
        except (AOLError, DBAPIError) as exc:
            log.error("the daemon cannot run: %s",
                      limits.database_message(exc) or str(exc).strip().splitlines()[0])
            return EXIT_FAILURE
        except KeyboardInterrupt:
            return EXIT_FAILURE
        finally:
            engine.dispose()
