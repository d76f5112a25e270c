"""SQLite: one UPDATE ... RETURNING under an immediate write lock claims a batch.

Several worker processes can share one database file: ``BEGIN IMMEDIATE`` serialises the
claims, WAL lets readers continue meanwhile, and the busy timeout makes writers queue.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from aol_core.drivers.base import CLAIM_COLUMNS, CLAIMED, DUE, Claim, Listener, run_claim
from aol_core.models import IS_RUNNING, Status
from aol_core.models import actions_table as actions
from aol_core.models import logs_table as logs

_INSERT = (
    sqlite.insert(actions)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(actions.c.idempotency_key, actions.c.id)
)
_SUCCEED = (
    update(actions)
    .where(
        actions.c.id == bindparam("b_id"),
        actions.c.fencing_token == bindparam("b_token"),
        IS_RUNNING,
    )
    .values(
        status=Status.SUCCESS.value, lease_owner=None, lease_expires_at=None, last_error=None,
        result=bindparam("b_result", type_=actions.c.result.type),
        updated_at=bindparam("b_now"), finished_at=bindparam("b_now"),
    )
)
_CLAIM = (
    update(actions)
    .where(actions.c.id.in_(DUE.scalar_subquery()))
    .values(CLAIMED)
    .returning(*CLAIM_COLUMNS)
)


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
        return run_claim(engine, _CLAIM, worker=worker, action_types=action_types,
                         limit=limit, lease_seconds=lease_seconds, now=now)

    def insert_actions(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[str, int]:
        return {key: id_ for key, id_ in conn.execute(_INSERT, list(rows))}

    def succeed_many(
        self, conn: Connection, succeeded: Sequence[tuple[Claim, Any]], now: datetime
    ) -> int:
        rows = [{"b_id": claim.id, "b_token": claim.fencing_token, "b_result": result,
                 "b_now": now} for claim, result in succeeded]
        return conn.execute(_SUCCEED, rows).rowcount

    def insert_logs(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        conn.execute(insert(logs), list(rows))

    def refresh_statistics(self, conn: Connection) -> None:
        """SQLite plans the claim from the partial index alone; nothing to refresh."""

    def notify(self, conn: Connection) -> None:
        """SQLite has no notification channel; idle workers poll."""

    def listen(self, engine: Engine, wake: threading.Event) -> Listener | None:
        return None
