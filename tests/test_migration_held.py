"""Upgrading a database that holds actions to the revision that adds HELD and schedules:
nothing is lost (on SQLite the status CHECK is widened in place, not by rebuilding the table,
which would cascade-delete the logs), and HELD is then accepted."""

from __future__ import annotations

from alembic import command
from sqlalchemy import func, insert, select, update

from aol_core import schema
from aol_core.db import create_engine
from aol_core.models import Status, actions_table, logs_table
from aol_core.timeutil import utcnow


def test_upgrading_from_the_initial_revision_keeps_actions_and_logs_and_accepts_held(
    db_url: str,
) -> None:
    engine = create_engine(db_url)
    try:
        config = schema._config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0001")
        now = utcnow()
        with engine.begin() as conn:
            conn.execute(insert(actions_table).values(
                id=1, action_type="T", payload={}, idempotency_key="k", status="FAILED",
                priority=0, attempts=1, max_attempts=3, not_before=now, fencing_token=1,
                proof_mode=False, created_at=now, updated_at=now))
            conn.execute(insert(logs_table).values(action_id=1, attempt=1, ts=now,
                                                   level="INFO", message="kept"))

        schema.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(update(actions_table).values(status=Status.HELD.value))
        with engine.connect() as conn:
            assert conn.execute(select(actions_table.c.status)).scalar_one() == "HELD"
            assert conn.execute(select(func.count()).select_from(logs_table)).scalar_one() == 1
        assert schema.current_revision(engine) == schema.HEAD_REVISION
    finally:
        engine.dispose()
