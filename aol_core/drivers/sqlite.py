"""SQLite: one UPDATE ... RETURNING under an immediate write lock claims a batch.

Several worker processes can share one database file: ``BEGIN IMMEDIATE`` serialises the
claims, WAL lets readers continue meanwhile, and the busy timeout makes writers queue.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import Connection

from aol_core.drivers.base import CLAIM_COLUMNS, Claim, Listener, claim_from_row
from aol_core.models import IS_CLAIMABLE, Status
from aol_core.models import actions_table as actions


class SQLiteDriver:
    name = "sqlite"

    def claim(
        self,
        engine: Engine,
        *,
        worker: str,
        action_types: Sequence[str],
        limit: int,
        lease_seconds: float,
        now: datetime,
    ) -> list[Claim]:
        due = (
            select(actions.c.id)
            .where(
                IS_CLAIMABLE,
                actions.c.not_before <= now,
                actions.c.action_type.in_(action_types),
            )
            .order_by(actions.c.priority.desc(), actions.c.not_before, actions.c.id)
            .limit(limit)
        )
        statement = (
            update(actions)
            .where(actions.c.id.in_(due.scalar_subquery()))
            .values(
                status=Status.RUNNING.value,
                attempts=actions.c.attempts + 1,
                fencing_token=actions.c.fencing_token + 1,
                lease_owner=worker,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=now,
                updated_at=now,
            )
            .returning(*CLAIM_COLUMNS)
        )
        with engine.begin() as conn:
            claims = [claim_from_row(row) for row in conn.execute(statement)]
        return sorted(claims, key=lambda c: c.sort_key)

    def insert_actions(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        statement = (
            insert(actions)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(actions.c.idempotency_key, actions.c.id)
        )
        return {key: id_ for key, id_ in conn.execute(statement, list(rows))}

    def notify(self, conn: Connection) -> None:
        """SQLite has no notification channel; idle workers poll."""

    def listen(self, engine: Engine, wake: threading.Event) -> Listener | None:
        return None
