"""SQLite: one UPDATE ... RETURNING under an immediate write lock claims a batch.

Several worker processes can share one database file: ``BEGIN IMMEDIATE`` serialises the
claims, WAL lets readers continue meanwhile, and the busy timeout makes writers queue.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.engine import Connection

from aol_core.drivers.base import CLAIM_COLUMNS, CLAIMED, DUE, Claim, Listener, run_claim
from aol_core.models import actions_table as actions

_INSERT = (
    insert(actions)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(actions.c.idempotency_key, actions.c.id)
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

    def refresh_statistics(self, conn: Connection) -> None:
        """SQLite plans the claim from the partial index alone; nothing to refresh."""

    def notify(self, conn: Connection) -> None:
        """SQLite has no notification channel; idle workers poll."""

    def listen(self, engine: Engine, wake: threading.Event) -> Listener | None:
        return None
