"""Schedules and holds across real processes, on SQLite and PostgreSQL: several processes
ticking one schedule with an injected clock, ``aol worker`` processes ticking a schedule an
operator adds while they run, and a worker killed inside a handler that was about to hold."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from test_worker_processes import (  # type: ignore[import-not-found]
    DEADLINE,
    POLL,
    Spawn,
    action,
    enqueue,
    spawn,
    status_of,
    wait_handler_running,
    wait_live,
    wait_until,
)

from aol_core import NewAction, Schedule, scheduler
from aol_core.models import Action, ExecutionLog, ScheduleState, Status
from aol_core.plugins import PluginRegistry
from helpers import aol

pytestmark = pytest.mark.slow
__all__ = ["spawn"]  # a fixture, imported for this module's tests

START = datetime(2026, 3, 28, 20, 0, 30, tzinfo=UTC)  # Berlin springs forward that night
CRON = "*/10 * * * *"
EVERY = timedelta(minutes=7)

#: a child process that ticks at each moment of its clock, once every process is ready
TICKER = """
import json, sys, time
from datetime import datetime, timedelta
from pathlib import Path
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.plugins import load_plugins
from aol_core.scheduler import tick

url, start, step, ticks, ready, go, out = sys.argv[1:]
engine = create_engine(url)
registry = load_plugins(Settings(plugins=("aol-test-actions",)))
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
decided = []
for i in range(1, int(ticks) + 1):
    now = datetime.fromisoformat(start) + timedelta(seconds=float(step) * i)
    decided += [e.idempotency_key for e in tick(engine, registry, now=now)]
Path(out).write_text(json.dumps(decided))
"""


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_ticking_with_an_injected_clock_enqueue_each_slot_exactly_once(
    processes: int, db_url: str, engine: Engine, sessions: sessionmaker[Session],
    registry: PluginRegistry, tmp_path: Path,
) -> None:
    schedules = [Schedule("cron", "TEST_NOOP", cron=CRON, timezone="Europe/Berlin"),
                 Schedule("every", "TEST_NOOP", every=EVERY, catch_up="all")]
    with sessions() as session, session.begin():
        for schedule in schedules:
            scheduler.add_schedule(session, schedule, registry, START)
    step, ticks = timedelta(minutes=3), 240  # twelve hours, over the skipped hour
    end = START + step * ticks
    script = tmp_path / "ticker.py"
    script.write_text(textwrap.dedent(TICKER))
    go = tmp_path / "go"
    children = []
    for n in range(processes):
        children.append(subprocess.Popen(
            [sys.executable, str(script), db_url, START.isoformat(),
             str(step.total_seconds()), str(ticks), str(tmp_path / f"ready-{n}"), str(go),
             str(tmp_path / f"out-{n}.json")],
            stdin=subprocess.DEVNULL,
        ))
    try:
        wait_until(lambda: all((tmp_path / f"ready-{n}").exists() for n in range(processes)),
                   "every ticker to start")
        go.touch()
        for child in children:
            assert child.wait(timeout=DEADLINE * 3) == 0
    finally:
        for child in children:
            child.kill()
            child.wait()

    decided = Counter(key for n in range(processes)
                      for key in json.loads((tmp_path / f"out-{n}.json").read_text()))
    expected = [scheduler.slot_key(s.name, slot) for s in schedules
                for slot in s.slots(START, end)]
    # Every ten minutes of real time: the skipped hour's six wall times are one slot.
    assert sum(key.startswith("aol-schedule:cron:") for key in expected) == 72
    assert decided == Counter(expected)  # each slot decided by exactly one process
    with sessions() as session:
        keys = list(session.scalars(select(Action.idempotency_key)))
        missed = list(session.scalars(select(ScheduleState.missed)))
    assert sorted(keys) == sorted(expected)
    assert missed == [0, 0]


def test_workers_tick_a_schedule_an_operator_adds_while_they_run(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    workers = [spawn("--poll-interval", POLL, name=f"ticker-{n}") for n in range(2)]
    wait_live(engine, *workers)
    added = aol("schedules", "add", "every-second", "--every", "1s", "TEST_RECORD",
                "--payload", '{"tag": "{slot}"}', "--catch-up", "all", db_url=db_url)
    assert added.returncode == 0, added.stderr

    def succeeded() -> list[Action]:
        with sessions() as session:
            done = list(session.scalars(select(Action).where(
                Action.status == Status.SUCCESS).order_by(Action.not_before)))
        return done if len(done) >= 5 else []

    wait_until(succeeded, "five slots to run", watch=workers)
    assert aol("schedules", "pause", "every-second", db_url=db_url).returncode == 0
    for worker in workers:
        assert worker.stop() == 0
    with sessions() as session:
        slots = [a.not_before for a in session.scalars(select(Action).order_by(Action.not_before))]
    assert len(slots) == len(set(slots))
    # Every second from the first slot to the last, each once: none skipped, none doubled.
    assert [later - earlier for earlier, later in itertools.pairwise(slots)] == [
        timedelta(seconds=1)] * (len(slots) - 1)


def test_a_worker_killed_while_its_handler_is_about_to_hold_changes_nothing(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    [action_id] = enqueue(sessions, NewAction("TEST_HOLD", {"sleep": 5, "times": 1}))
    doomed = spawn("--lease-seconds", "2", "--poll-interval", POLL, name="doomed")
    wait_handler_running(engine, db_url, sessions, action_id, doomed)
    doomed.send(signal.SIGKILL)
    assert doomed.wait() == -signal.SIGKILL
    assert status_of(sessions, action_id) == Status.RUNNING  # not HELD: nothing was settled

    rescuer = spawn("--lease-seconds", "2", "--poll-interval", POLL, name="rescuer")
    wait_until(lambda: status_of(sessions, action_id) == Status.SUCCESS,
               f"action {action_id} to be rescued and run again", watch=[rescuer])
    assert rescuer.stop() == 0
    done = action(sessions, action_id)
    assert (done.attempts, done.result) == (2, {"attempt": 2})
    with sessions() as session:
        messages = list(session.scalars(select(ExecutionLog.message).where(
            ExecutionLog.action_id == action_id)))
    assert not any("held" in m for m in messages), messages
    assert any("lease expired" in m for m in messages)


def test_a_held_action_is_released_from_the_command_line_and_run_by_a_worker(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    [action_id] = enqueue(sessions, NewAction("TEST_HOLD", {"times": 1}))
    worker = spawn("--poll-interval", POLL, name="holder")
    wait_until(lambda: status_of(sessions, action_id) == Status.HELD, "the action to be held",
               watch=[worker])
    assert aol("actions", "release", str(action_id), db_url=db_url).returncode == 0
    wait_until(lambda: status_of(sessions, action_id) == Status.SUCCESS,
               "the released action to run", watch=[worker])
    assert worker.stop() == 0
