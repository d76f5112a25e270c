"""Helpers shared by AOL's tests (importable as ``helpers``: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from aol_core.drivers import Claim, driver_for
from aol_core.models import Action, Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow


def aol(*args: str, db_url: str, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real ``aol`` command in a child process."""
    return run_aol("--db", db_url, *args, env=env, timeout=timeout)


def run_aol(*args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``aol`` with exactly these arguments."""
    return subprocess.run(
        [sys.executable, "-m", "aol_core.cli", *args],
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


HANDLER = """
from aol_core import hookimpl, ActionSpec
CALLS = []

@hookimpl
def aol_register_actions():
    return {types!r}

@hookimpl
def handle_action(action_type, payload):
    CALLS.append((__name__, action_type))
    return {{"handled_by": __name__}}
"""


def install(site: Path, dist: str, version: str, module: str, source: str,
            entry_name: str | None = None) -> None:
    """Install a one-module plugin distribution into ``site`` (a directory on sys.path),
    as pip would: the module, and a ``.dist-info`` with METADATA and entry_points.txt."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(
        f"[aicmo.actions]\n{entry_name or module} = {module}\n")


def handler_plugin(site: Path, dist: str, module: str, *types: str, version: str = "1.0") -> None:
    install(site, dist, version, module, HANDLER.format(types=list(types)))


def on_path(site: Path, **env: str) -> dict[str, str]:
    """Environment for an ``aol`` child process that sees the distributions in ``site``."""
    return {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **env}
