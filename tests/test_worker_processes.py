"""End to end: real ``aol worker`` processes on a shared database, on SQLite and PostgreSQL.

Each test starts workers as child processes (``python -m aol_core.cli worker``), drives them
with signals and the control switches, and asserts on what ends up in the database and on
their exit codes and log lines. Every wait is bounded, and the ``spawn`` fixture kills every
child it started, so a failing test can neither hang nor leak processes. Nothing here asserts
on speed: waits are deadlines, not measurements.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aol_test_actions import runs  # type: ignore[import-untyped]
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from aol_core import NewAction, enqueue_many
from aol_core.control import set_flag
from aol_core.models import Action, ExecutionLog, Status
from aol_core.timeutil import utcnow
from aol_core.worker_registry import live_workers
from helpers import aol, statuses

pytestmark = pytest.mark.slow

#: the longest any single wait in this file may take before the test fails
DEADLINE = 60.0
#: how often an idle test worker looks for work (and re-reads the switches)
POLL = "0.1"


# --- child processes ------------------------------------------------------------------------


@dataclass
class WorkerProcess:
    """One ``aol worker`` child; its stdout and stderr go to files (a full pipe would block it)."""

    name: str
    popen: subprocess.Popen[bytes]
    stderr_path: Path
    files: list[Any] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        if self.running():
            os.kill(self.pid, signum)

    def wait(self, timeout: float = DEADLINE) -> int:
        """The exit code; fails the test (showing the log) if the worker does not exit in time."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {self.name} did not exit within {timeout:.0f} s; its log:\n"
                        f"{self.stderr()[-4000:]}")

    def stop(self) -> int:
        """SIGTERM, as an operator or a supervisor would stop it, and its exit code."""
        self.send(signal.SIGTERM)
        return self.wait()


Spawn = Callable[..., WorkerProcess]


@pytest.fixture
def spawn(db_url: str, engine: Engine, tmp_path: Path) -> Iterator[Spawn]:
    """Start ``aol worker`` processes on the test's database; all are killed at teardown."""
    started: list[WorkerProcess] = []

    def start(*flags: str, name: str | None = None) -> WorkerProcess:
        name = name or f"worker-{len(started) + 1}"
        files = f"{name}.{len(started) + 1}"  # a name started again keeps each one's logs
        out = (tmp_path / f"{files}.out").open("wb")
        err_path = tmp_path / f"{files}.err"
        err = err_path.open("wb")
        popen = subprocess.Popen(
            [sys.executable, "-m", "aol_core.cli", "--db", db_url, "worker", "--name", name,
             *flags],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env={**os.environ},
        )
        worker = WorkerProcess(name, popen, err_path, [out, err])
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            if worker.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGCONT)  # a stopped process must not linger
                    worker.popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL cannot be ignored
                worker.popen.wait(timeout=15)
            for handle in worker.files:
                handle.close()


# --- waiting and looking --------------------------------------------------------------------


def wait_until(
    condition: Callable[[], Any], what: str, timeout: float = DEADLINE,
    watch: list[WorkerProcess] | None = None,
) -> Any:
    """Poll ``condition`` until it is truthy; fail naming ``what`` at the deadline, or at once
    when a ``watch``ed worker has died meanwhile (with its log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for worker in watch or ():
            if not worker.running():
                pytest.fail(f"worker {worker.name} exited ({worker.popen.returncode}) while "
                            f"waiting for {what}; its log:\n{worker.stderr()[-4000:]}")
        if time.monotonic() > deadline:
            logs = "".join(f"\n--- {w.name}:\n{w.stderr()[-3000:]}" for w in watch or ())
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{logs}")
        time.sleep(0.05)


def live_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {row.name for row in live_workers(conn, utcnow())}


def wait_live(engine: Engine, *workers: WorkerProcess) -> None:
    """Until every worker has registered (it is then past start-up and in its loop)."""
    names = {w.name for w in workers}
    wait_until(lambda: names <= live_names(engine), f"workers {sorted(names)} to register",
               watch=list(workers))


def enqueue(sessions: sessionmaker[Session], *items: NewAction) -> list[int]:
    with sessions() as session, session.begin():
        return [e.id for e in enqueue_many(session, list(items))]


def record(key: str, sleep: float = 0, tag: str | None = None) -> NewAction:
    return NewAction("TEST_RECORD", {"tag": tag or key, "sleep": sleep}, idempotency_key=key)


def action(sessions: sessionmaker[Session], action_id: int) -> Action:
    with sessions() as session:
        found = session.get(Action, action_id)
        assert found is not None
        return found


def status_of(sessions: sessionmaker[Session], action_id: int) -> str:
    return action(sessions, action_id).status


def committed_runs(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(runs).order_by(runs.c.id)))


def execution_logs(engine: Engine, action_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(
            select(ExecutionLog.__table__).where(ExecutionLog.action_id == action_id)
            .order_by(ExecutionLog.id)
        ))


def is_sqlite(db_url: str) -> bool:
    return db_url.startswith("sqlite")


def sqlite_path(db_url: str) -> str:
    database = make_url(db_url).database
    assert database
    return database


def handler_in_transaction(engine: Engine, db_url: str) -> bool:
    """True while some worker's TEST_RECORD handler has written its (uncommitted) run row.

    The row itself is invisible until commit, so look at the lock it holds instead: on
    PostgreSQL the ROW EXCLUSIVE lock on this schema's ``test_actions_runs``; on SQLite the
    database write lock (a BEGIN IMMEDIATE that must not wait fails).
    """
    if is_sqlite(db_url):
        probe = sqlite3.connect(sqlite_path(db_url), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise
        finally:
            probe.close()
    with engine.connect() as conn:
        held = conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE relation = 'test_actions_runs'::regclass "
            "AND mode = 'RowExclusiveLock' AND granted"
        )).scalar_one()
    return bool(held)


def wait_handler_running(engine: Engine, db_url: str, sessions: sessionmaker[Session],
                         action_id: int, worker: WorkerProcess) -> None:
    """Until ``worker`` holds ``action_id`` and its handler sits inside its transaction."""
    def holding() -> bool:
        found = action(sessions, action_id)
        return (found.status == Status.RUNNING and found.lease_owner == worker.name
                and handler_in_transaction(engine, db_url))

    wait_until(holding, f"{worker.name} to be inside the handler of action {action_id}",
               watch=[worker])


def wait_handler_thinking(engine: Engine, db_url: str, sessions: sessionmaker[Session],
                          action_id: int, worker: WorkerProcess) -> None:
    """Until ``worker``'s handler of ``action_id`` has read and is "thinking" (a TEST_RECORD
    with ``read_first`` and ``think``), before its write.

    On PostgreSQL its read leaves an ACCESS SHARE lock on ``test_actions_runs`` until its
    transaction ends. On SQLite a read takes no lasting lock, so allow a second after the
    claim (the handler starts within milliseconds of it; the think lasts seconds).
    """
    def thinking() -> bool:
        found = action(sessions, action_id)
        if found.status != Status.RUNNING or found.lease_owner != worker.name:
            return False
        if is_sqlite(db_url):
            return True
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE relation = 'test_actions_runs'::regclass "
                "AND mode = 'AccessShareLock' AND granted AND pid <> pg_backend_pid()"
            )).scalar_one())

    wait_until(thinking, f"{worker.name} to be thinking in the handler of action {action_id}",
               watch=[worker])
    if is_sqlite(db_url):
        time.sleep(1.0)


# --- 1. many processes drain a queue, each action exactly once ---------------------------


N_ACTIONS = 2000


@pytest.mark.parametrize("processes", [2, 4])
def test_burst_workers_in_parallel_drain_the_queue_running_every_action_exactly_once(
    processes: int, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    # Each handler "thinks" 6 ms before it writes: slower than the batching threshold, so
    # every action has a transaction of its own and SQLite's write lock changes hands often
    # (an empty handler lets the first worker up drain all 2,000 before the others look).
    ids = enqueue(sessions, *(
        NewAction("TEST_RECORD", {"tag": f"drain-{i}", "read_first": True, "think": 0.006},
                  idempotency_key=f"drain-{i}")
        for i in range(N_ACTIONS)))
    assert len(set(ids)) == N_ACTIONS
    # Hold the queue until every worker is up, so they all compete for the whole queue
    # (long-running workers, since a paused --burst worker exits), and stop them once done.
    with engine.begin() as conn:
        set_flag(conn, "paused", True)
    workers = [spawn("--poll-interval", POLL) for _ in range(processes)]
    wait_live(engine, *workers)
    with engine.begin() as conn:
        set_flag(conn, "paused", False)
    wait_until(lambda: all(status == Status.SUCCESS for status in statuses(sessions).values()),
               "the workers to drain the queue", timeout=600, watch=workers)
    for worker in workers:
        assert worker.stop() == 0, worker.stderr()[-4000:]

    with engine.connect() as conn:
        by_status = dict(conn.execute(
            select(Action.status, func.count()).group_by(Action.status)).all())
        attempts = dict(conn.execute(
            select(Action.attempts, func.count()).group_by(Action.attempts)).all())
    assert by_status == {Status.SUCCESS.value: N_ACTIONS}
    assert attempts == {1: N_ACTIONS}
    done = committed_runs(engine)
    assert len(done) == N_ACTIONS
    assert {row.action_id for row in done} == set(ids)
    assert {row.attempt for row in done} == {1}
    assert {row.tag for row in done} == {f"drain-{i}" for i in range(N_ACTIONS)}
    # Which worker ran how many is not promised (SQLite hands its write lock to whoever asks
    # at the right moment): only that every run came from one of these workers.
    assert {row.pid for row in done} <= {w.pid for w in workers}


# --- 1b. a worker can join while another is busy -----------------------------------------


def test_a_worker_started_while_another_is_inside_a_handler_registers_and_runs(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    # On SQLite the first worker's handler holds the write lock while the second registers:
    # the registration must wait its turn, not fail on a stale read snapshot.
    [busy_id] = enqueue(sessions, record("busy", sleep=6))
    first = spawn("--poll-interval", POLL, name="first")
    wait_handler_running(engine, db_url, sessions, busy_id, first)
    second = spawn("--poll-interval", POLL, name="second")
    wait_until(lambda: status_of(sessions, busy_id) == Status.SUCCESS,
               "the first worker to finish its action", watch=[first, second])
    wait_live(engine, second)
    [later_id] = enqueue(sessions, NewAction("TEST_NOOP", {}))
    wait_until(lambda: status_of(sessions, later_id) == Status.SUCCESS,
               "the workers to run a second action", watch=[first, second])
    assert first.stop() == 0
    assert second.stop() == 0


# --- 2. a crashed worker's action is retried after its lease expires --------------------


def test_action_of_a_worker_killed_mid_action_is_completed_by_another_after_lease_expiry(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    [action_id] = enqueue(sessions, record("crash", sleep=5))
    doomed = spawn("--lease-seconds", "2", "--poll-interval", POLL, name="doomed")
    wait_handler_running(engine, db_url, sessions, action_id, doomed)
    doomed.send(signal.SIGKILL)
    assert doomed.wait() == -signal.SIGKILL

    rescuer = spawn("--lease-seconds", "2", "--poll-interval", POLL, name="rescuer")
    wait_until(lambda: status_of(sessions, action_id) == Status.SUCCESS,
               f"action {action_id} to succeed on the second worker", watch=[rescuer])
    assert rescuer.stop() == 0

    done = action(sessions, action_id)
    assert done.attempts == 2
    assert done.result == {"key": "crash", "attempt": 2}
    # The killed worker's insert never committed; the rescuer's did, once.
    assert [(r.action_id, r.attempt, r.worker) for r in committed_runs(engine)] == [
        (action_id, 2, "rescuer")
    ]
    expiries = [e for e in execution_logs(engine, action_id) if "lease expired" in e.message]
    assert len(expiries) == 1, execution_logs(engine, action_id)
    [expiry] = expiries
    assert expiry.level == "WARNING"
    assert expiry.attempt == 1
    assert "doomed" in expiry.message and "will be retried" in expiry.message


def test_a_worker_restarted_under_its_name_right_after_sigkill_starts(
    engine: Engine, spawn: Spawn
) -> None:
    """As a supervisor restarts it (systemd ``Restart=always``): the killed worker's
    registration is live for a lease (an hour here), but its process is gone."""
    killed = spawn("--lease-seconds", "3600", "--poll-interval", POLL, name="w")
    wait_live(engine, killed)
    killed.send(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    restarted = spawn("--lease-seconds", "3600", "--poll-interval", POLL, name="w")
    wait_until(lambda: "worker w started" in restarted.stderr(),
               "the restarted worker to start", watch=[restarted])
    with engine.connect() as conn:
        assert [(row.name, row.pid) for row in live_workers(conn, utcnow())] == [
            ("w", restarted.pid)]
    assert restarted.stop() == 0


def test_a_worker_frozen_past_its_lease_whose_name_was_taken_stops_when_it_wakes(
    engine: Engine, spawn: Spawn
) -> None:
    """Frozen (SIGSTOP) longer than its lease, its registration expired and a new worker
    registered the name; woken, it finds the name taken at its next heartbeat and stops,
    so two live workers never share a name."""
    frozen = spawn("--lease-seconds", "2", "--poll-interval", POLL, name="w")
    wait_live(engine, frozen)
    frozen.send(signal.SIGSTOP)
    wait_until(lambda: "w" not in live_names(engine), "the frozen worker's registration "
               "to expire")
    successor = spawn("--lease-seconds", "3600", "--poll-interval", POLL, name="w")
    wait_until(lambda: "worker w started" in successor.stderr(), "the successor to start",
               watch=[successor])
    frozen.send(signal.SIGCONT)
    assert frozen.wait() == 0
    assert "the name is registered to another worker now" in frozen.stderr()
    with engine.connect() as conn:  # the woken worker's stop did not mark it stopped
        assert [(row.name, row.pid, row.stopped_at) for row in live_workers(
            conn, utcnow())] == [("w", successor.pid, None)]
    assert successor.stop() == 0


def test_a_second_worker_under_a_live_workers_name_is_refused(
    engine: Engine, spawn: Spawn
) -> None:
    first = spawn("--poll-interval", POLL, name="w")
    wait_live(engine, first)
    second = spawn("--poll-interval", POLL, name="w")
    assert second.wait() == 1
    assert f"a live worker is already named 'w' (process {first.pid} on " in second.stderr()
    assert first.running()
    assert first.stop() == 0


# --- 3. a frozen worker's late completion is refused ----------------------------------------


def test_stale_worker_resumed_after_losing_its_lease_cannot_overwrite_the_new_owners_outcome(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn,
) -> None:
    # The handler reads, "thinks" 5 s, then writes its run row. It is frozen while thinking:
    # frozen after its write, it would hold SQLite's only write lock and block every worker.
    [action_id] = enqueue(sessions, NewAction(
        "TEST_RECORD", {"tag": "frozen", "read_first": True, "think": 5},
        idempotency_key="frozen"))
    stale = spawn("--lease-seconds", "2", "--poll-interval", POLL, name="stale")
    wait_handler_thinking(engine, db_url, sessions, action_id, stale)
    stale.send(signal.SIGSTOP)
    try:
        fresh = spawn("--lease-seconds", "2", "--poll-interval", POLL, name="fresh")
        wait_until(lambda: status_of(sessions, action_id) == Status.SUCCESS,
                   f"action {action_id} to be taken over and completed by another worker",
                   watch=[fresh])
    finally:
        stale.send(signal.SIGCONT)

    # The stale worker wakes, finishes its handler, and finds its fencing token outdated.
    def lost_entry() -> list[Any]:
        return [e for e in execution_logs(engine, action_id)
                if e.worker == "stale" and "lost its lease" in e.message]

    [lost] = wait_until(lost_entry, "the stale worker to record that it lost the lease",
                        watch=[stale, fresh])
    assert lost.level == "WARNING"
    assert lost.attempt == 1
    assert stale.stop() == 0
    assert fresh.stop() == 0

    done = action(sessions, action_id)
    assert done.status == Status.SUCCESS
    assert done.attempts == 2
    assert done.result == {"key": "frozen", "attempt": 2}
    assert [(r.action_id, r.attempt, r.worker) for r in committed_runs(engine)] == [
        (action_id, 2, "fresh")
    ]
    warnings = [line for line in stale.stderr().splitlines()
                if "WARNING" in line and "LEASE LOST" in line and f"action {action_id} " in line]
    assert warnings, stale.stderr()[-4000:]
    # the history does not say that the refused attempt succeeded
    succeeded = [(e.attempt, e.worker) for e in execution_logs(engine, action_id)
                 if "succeeded" in e.message]
    assert succeeded == [(2, "fresh")]


# --- 4. the kill switch -----------------------------------------------------------------


def test_kill_switch_stops_running_workers_keeps_new_ones_from_starting_until_revived(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    running = spawn("--poll-interval", POLL, name="running")
    wait_live(engine, running)

    killed = aol("control", "kill", db_url=db_url)
    assert killed.returncode == 0, killed.stderr
    assert running.wait() == 0
    assert "kill switch" in running.stderr()
    assert "running" not in live_names(engine)

    refused = spawn("--poll-interval", POLL, name="refused")
    assert refused.wait() == 0
    assert "kill switch is set" in refused.stderr()
    assert "refused" not in live_names(engine)

    revived = aol("control", "revive", db_url=db_url)
    assert revived.returncode == 0, revived.stderr
    [action_id] = enqueue(sessions, NewAction("TEST_NOOP", {}))
    after = spawn("--burst", "--poll-interval", POLL, name="after")
    assert after.wait() == 0, after.stderr()[-4000:]
    assert "kill switch" not in after.stderr()
    assert status_of(sessions, action_id) == Status.SUCCESS


# --- 5. SIGTERM: finish the running action, hand back the rest ---------------------------


def test_sigterm_finishes_the_running_action_and_leaves_the_rest_to_others(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    ids = enqueue(sessions, *(record(f"term-{i}", sleep=2) for i in range(5)))
    worker = spawn("--concurrency", "1", "--batch-size", "5", "--poll-interval", POLL,
                   name="terminated")

    def one_started() -> bool:
        rows = [action(sessions, i) for i in ids]
        return (any(a.status == Status.RUNNING for a in rows)
                and handler_in_transaction(engine, db_url))

    wait_until(one_started, "the worker to start one", watch=[worker])
    # one runner: it claimed only the action it could start
    assert sorted(action(sessions, i).status for i in ids) == [
        Status.PENDING] * 4 + [Status.RUNNING]
    worker.send(signal.SIGTERM)
    assert worker.wait() == 0, worker.stderr()[-4000:]

    [ran] = committed_runs(engine)
    assert ran.attempt == 1
    finished = action(sessions, ran.action_id)
    assert finished.status == Status.SUCCESS
    assert finished.attempts == 1
    for action_id in set(ids) - {ran.action_id}:
        waiting = action(sessions, action_id)
        assert (waiting.status, waiting.attempts, waiting.lease_owner) == (
            Status.PENDING, 0, None)
    assert "SIGTERM" in worker.stderr()


# --- 6. pause and resume ----------------------------------------------------------------


def test_pause_stops_claiming_and_resume_starts_it_again(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    # Paused before the worker starts, so no test can race the worker's next look at the
    # switch (how soon a busy machine lets it look is not the behaviour under test).
    paused = aol("control", "pause", db_url=db_url)
    assert paused.returncode == 0, paused.stderr
    worker = spawn("--poll-interval", POLL, name="pausable")
    wait_live(engine, worker)

    [action_id] = enqueue(sessions, NewAction("TEST_NOOP", {}))
    time.sleep(1.5)  # fifteen poll intervals: time enough to have claimed it, were it not paused
    held = action(sessions, action_id)
    assert (held.status, held.attempts) == (Status.PENDING, 0)
    assert worker.running()

    resumed = aol("control", "resume", db_url=db_url)
    assert resumed.returncode == 0, resumed.stderr
    wait_until(lambda: status_of(sessions, action_id) == Status.SUCCESS,
               "the resumed worker to run the action", watch=[worker])
    assert worker.stop() == 0


# --- 7. an idle worker writes nothing ---------------------------------------------------


WATCHED_TABLES = ("aol_actions", "aol_execution_logs", "aol_workers", "aol_control")


def snapshot(engine: Engine, db_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the watched tables; on PostgreSQL with ``xmin``, which any UPDATE changes
    even when it writes the same values."""
    version = "" if is_sqlite(db_url) else "xmin::text AS row_version, "
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(
                text(f"SELECT {version}t.* FROM {table} t ORDER BY 1, 2"))]
            for table in WATCHED_TABLES
        }


def test_idle_worker_writes_nothing_to_the_database(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    [done_id] = enqueue(sessions, NewAction("TEST_NOOP", {}, idempotency_key="done"))
    # Due in a day: present but never claimable in this test.
    enqueue(sessions, NewAction("TEST_NOOP", {}, idempotency_key="later",
                                not_before=utcnow() + timedelta(days=1)))
    # A long lease puts the first heartbeat (a third of it) far beyond the watched window.
    worker = spawn("--lease-seconds", "600", "--poll-interval", POLL, name="idler")
    wait_until(lambda: status_of(sessions, done_id) == Status.SUCCESS,
               "the worker to run the due action", watch=[worker])
    time.sleep(0.5)  # let it settle into idling

    watcher = sqlite3.connect(sqlite_path(db_url)) if is_sqlite(db_url) else None
    try:
        data_version = watcher.execute("PRAGMA data_version").fetchone()[0] if watcher else None
        before = snapshot(engine, db_url)
        time.sleep(3.0)  # about thirty idle polls
        after = snapshot(engine, db_url)
        if watcher is not None:
            assert watcher.execute("PRAGMA data_version").fetchone()[0] == data_version, (
                "another connection committed to the SQLite database while the worker idled"
            )
    finally:
        if watcher is not None:
            watcher.close()
    assert worker.running()
    for table in WATCHED_TABLES:
        assert after[table] == before[table], f"{table} changed while the worker idled"
    assert worker.stop() == 0


# --- 8. NOTIFY wakes an idle worker on PostgreSQL ----------------------------------------


def test_notify_wakes_an_idle_postgresql_worker_long_before_its_poll_interval(
    db_url: str, engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    if is_sqlite(db_url):
        pytest.skip("SQLite has no LISTEN/NOTIFY: idle workers find new work by polling")
    worker = spawn("--poll-interval", "60", name="listener")
    wait_live(engine, worker)
    time.sleep(1.5)  # past its first look at the empty queue: now in its 60 s wait
    [action_id] = enqueue(sessions, NewAction("TEST_NOOP", {}))
    wait_until(lambda: status_of(sessions, action_id) == Status.SUCCESS,
               "the notified worker to run the action (its next poll is a minute away)",
               timeout=30, watch=[worker])
    assert worker.stop() == 0


# --- 9. aol health --------------------------------------------------------------------------


def test_health_is_ok_with_a_live_worker_and_fails_naming_a_live_worker_once_it_stops(
    db_url: str, engine: Engine, spawn: Spawn
) -> None:
    worker = spawn("--poll-interval", POLL, name="healthy")
    wait_live(engine, worker)
    healthy = aol("health", db_url=db_url)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.splitlines()[-1] == "healthy"

    assert worker.stop() == 0
    unhealthy = aol("health", db_url=db_url)
    assert unhealthy.returncode != 0, unhealthy.stdout
    failed = [line for line in unhealthy.stdout.splitlines() if line.startswith("FAIL")]
    assert any("a live worker" in line for line in failed), unhealthy.stdout
