"""Helpers shared by AOL's tests (importable as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from aol_core.drivers import Claim, driver_for
from aol_core.models import Action, Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow


def aol(*args: str, db_url: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real ``aol`` command in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "aol_core.cli", "--db", db_url, *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def statuses(sessions: sessionmaker[Session]) -> dict[int, str]:
    with sessions() as session:
        return dict(session.execute(select(Action.id, Action.status)).all())  # type: ignore[arg-type]


def fetch(sessions: sessionmaker[Session], action_id: int) -> Action:
    with sessions() as session:
        action = session.get(Action, action_id)
        assert action is not None
        return action


def pass_time(engine: Engine, elapsed: timedelta) -> None:
    """Move every running action's lease end back by ``elapsed``, as if that much time had
    passed on every clock (PostgreSQL's leases run on the database's, which tests cannot
    set)."""
    with engine.begin() as conn:
        leases = conn.execute(select(Action.id, Action.lease_expires_at)
                              .where(Action.status == Status.RUNNING.value)).all()
        for action_id, expires in leases:
            conn.execute(update(Action).where(Action.id == action_id)
                         .values(lease_expires_at=expires - elapsed))


def claim_all(harness: ActionHarness, limit: int = 100) -> list[Claim]:
    """Claim every due action of the harness's types, as a worker named ``w`` would."""
    return driver_for(harness.engine).claim(
        harness.engine, worker="w", action_types=sorted(harness.registry.routes), limit=limit,
        lease_seconds=30, now=utcnow())
