"""The seed's ``ActionQueue`` interface, kept for code written against the original AOL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from aol_core.context import normalize_level
from aol_core.models import Action, ExecutionLog
from aol_core.queue import enqueue, fail_action
from aol_core.timeutil import utcnow


class ActionQueue:
    """A thin face over :func:`aol_core.enqueue` and the action tables."""

    @staticmethod
    def enqueue_action(
        session: Session,
        action_type: str,
        payload: dict[str, Any],
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
    ) -> Action:
        """Enqueue, or return the existing action for a known key (never an IntegrityError)."""
        enqueued = enqueue(
            session, action_type, payload, idempotency_key=idempotency_key, not_before=not_before
        )
        action = session.get(Action, enqueued.id)
        assert action is not None
        return action

    @staticmethod
    def log_execution(
        session: Session,
        action_id: int,
        level: str,
        message: str,
        artifact_ref: str | None = None,
        artifact_sha256: str | None = None,
    ) -> None:
        action = session.get(Action, action_id)
        session.add(
            ExecutionLog(
                action_id=action_id, attempt=action.attempts if action else 0, ts=utcnow(),
                level=normalize_level(level), message=message, worker=None,
                artifact_ref=artifact_ref, artifact_sha256=artifact_sha256,
            )
        )

    @staticmethod
    def mark_failed(session: Session, action_id: int, error: str) -> None:
        """Fail an unfinished action permanently (an operator's decision)."""
        fail_action(session, action_id, error)
