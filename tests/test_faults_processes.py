"""The fault suite, part 2: real ``aol worker`` processes against a world that breaks.

Four workers drain 20,000 actions whose handlers each insert one row in the action's
transaction while the suite SIGKILLs them, restarts (or cuts off) the PostgreSQL server under
them, or fills SQLite's disk. Whatever happens, the promise is checked at the end: every
action SUCCESS and exactly one committed row per action. What each fault cost (how many
actions ran again, how long the workers took to resume) is printed; run with ``-s`` to see
it. docs/operations.md records the numbers. Nothing here asserts on speed: waits are
deadlines, not measurements.

Restarting a server or terminating its connections would break every other test using it,
so those tests run their own PostgreSQL (``initdb`` into a temporary directory, a free port,
removed afterwards); it needs the server binaries, which CI and this machine have.
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aol_test_actions import runs  # type: ignore[import-untyped]
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from aol_core import NewAction, enqueue_many, schema
from aol_core.config import Settings
from aol_core.db import create_engine, session_factory
from aol_core.models import Action, Artifact, ExecutionLog, Status
from aol_core.plugins import PluginRegistry, load_plugins

pytestmark = pytest.mark.slow

#: actions in each drain (``AOL_FAULT_ACTIONS`` shrinks it for a quick look on a busy
#: machine; CI runs the full size), and the workers draining them
N_ACTIONS = int(os.environ.get("AOL_FAULT_ACTIONS", "20000"))
WORKERS = 4
#: a short lease, so a killed worker's actions are taken over within seconds
LEASE = "3"
POLL = "0.1"
#: the longest a whole drain may take on a busy machine before the test fails
DRAIN_DEADLINE = 600.0
#: the longest any other single wait may take
DEADLINE = 120.0


# --- workers as child processes -----------------------------------------------------------


@dataclass
class Fleet:
    """``aol worker`` children by name; a restarted worker keeps its name, as under a
    supervisor. Logs go to files (a full pipe would block a worker)."""

    db_url: str
    logs: Path
    preexec: Callable[[], None] | None = None
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_of: dict[str, Path] = field(default_factory=dict)
    everything: list[subprocess.Popen[bytes]] = field(default_factory=list)
    starts: int = 0

    def start(self, name: str, *flags: str) -> subprocess.Popen[bytes]:
        self.starts += 1
        log = self.logs / f"{name}.{self.starts}.err"
        with log.open("wb") as err:
            popen = subprocess.Popen(
                [sys.executable, "-m", "aol_core.cli", "--db", self.db_url, "worker",
                 "--name", name, "--lease-seconds", LEASE, "--poll-interval", POLL, *flags],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ}, preexec_fn=self.preexec,
            )
        self.running[name] = popen
        self.log_of[name] = log
        self.everything.append(popen)
        return popen

    def kill(self, name: str) -> None:
        popen = self.running.pop(name)
        popen.kill()
        assert popen.wait(timeout=30) == -signal.SIGKILL

    def check_alive(self) -> None:
        for name, popen in self.running.items():
            if popen.poll() is not None:
                pytest.fail(f"worker {name} exited ({popen.returncode}); its log:\n"
                            f"{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        return "".join(f"\n--- {path.name}:\n{path.read_text(errors='replace')}"
                       for path in sorted(self.logs.glob("*.err")))

    def stop(self) -> None:
        """SIGTERM to every worker once it runs; each must exit 0. (A worker still importing,
        just restarted, has no handler for the signal yet and dies of it, holding nothing.)"""
        deadline = time.monotonic() + DEADLINE
        for name, log in self.log_of.items():
            while (name in self.running and f"worker {name} started" not in log.read_text()
                   and time.monotonic() < deadline):
                self.check_alive()
                time.sleep(0.1)
        for popen in self.running.values():
            popen.terminate()
        for name, popen in self.running.items():
            try:
                code = popen.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker {name} did not stop on SIGTERM; logs:\n"
                            f"{self.log_text()[-4000:]}")
            assert code == 0, f"worker {name} exited {code}; logs:\n{self.log_text()[-4000:]}"
        self.running.clear()

    def kill_all(self) -> None:
        for popen in self.everything:
            if popen.poll() is None:
                popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=15)


@pytest.fixture
def fleet_for(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    """Make fleets of workers; every child is killed at teardown, whatever happened."""
    fleets: list[Fleet] = []

    def make(db_url: str, preexec: Callable[[], None] | None = None) -> Fleet:
        logs = tmp_path / f"fleet-{len(fleets)}"
        logs.mkdir()
        fleets.append(Fleet(db_url, logs, preexec))
        return fleets[-1]

    yield make
    for fleet in fleets:
        fleet.kill_all()


# --- the drain and its verdict --------------------------------------------------------------


def enqueue_drain(sessions: sessionmaker[Session], n: int = N_ACTIONS) -> None:
    items = [NewAction("TEST_RECORD", {"tag": f"drain-{i}"}, idempotency_key=f"drain-{i}")
             for i in range(n)]
    with sessions() as session, session.begin():
        enqueue_many(session, items)


def succeeded(engine: Engine) -> int | None:
    """How many actions are SUCCESS, or None while the database cannot be reached."""
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Action)
                                    .where(Action.status == Status.SUCCESS)).scalar_one())
    except DBAPIError:
        return None


def wait_until(condition: Callable[[], Any], what: str, fleet: Fleet,
               timeout: float = DEADLINE) -> Any:
    """Poll ``condition`` until truthy; fail naming ``what`` at the deadline, or at once when
    a worker of ``fleet`` has died."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        fleet.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; logs:\n"
                        f"{fleet.log_text()[-6000:]}")
        time.sleep(0.1)


def wait_progress(engine: Engine, fleet: Fleet, at_least: int) -> None:
    wait_until(lambda: (succeeded(engine) or 0) >= at_least,
               f"{at_least} actions to succeed", fleet, timeout=DRAIN_DEADLINE)


def assert_every_action_ran_exactly_once(engine: Engine, n: int = N_ACTIONS) -> int:
    """Every action SUCCESS, exactly one committed row each; returns how many attempts were
    re-runs (the cost of the faults)."""
    with engine.connect() as conn:
        by_status = dict(conn.execute(
            select(Action.status, func.count()).group_by(Action.status)).all())
        rows_per_action: dict[int, int] = dict(conn.execute(
            select(runs.c.action_id, func.count()).group_by(runs.c.action_id)).all())
        action_ids = set(conn.execute(select(Action.id)).scalars())
        reruns = int(conn.execute(select(func.sum(Action.attempts - 1))).scalar_one() or 0)
    assert by_status == {Status.SUCCESS.value: n}
    assert set(rows_per_action) == action_ids
    doubled = {a: c for a, c in rows_per_action.items() if c != 1}
    assert not doubled, f"actions with more than one committed row: {doubled}"
    return reruns


def report(what: str, **numbers: Any) -> None:
    """The measured cost of a fault, for ``pytest -s`` and docs/operations.md."""
    print(f"\n[fault cost] {what}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


# --- 1. SIGKILL ---------------------------------------------------------------------------


KILLS = 10


def test_four_workers_drain_20k_actions_exactly_once_while_one_is_sigkilled_ten_times(
    db_url: str, engine: Engine, sessions: sessionmaker[Session],
    fleet_for: Callable[..., Fleet],
) -> None:
    enqueue_drain(sessions)
    fleet = fleet_for(db_url)
    names = [f"w{i}" for i in range(WORKERS)]
    started = time.monotonic()
    for name in names:
        fleet.start(name)
    seed = random.randrange(1 << 30)
    chooser = random.Random(seed)
    for kill in range(1, KILLS + 1):
        # spread the kills over the drain: each lands after some more progress
        wait_progress(engine, fleet, kill * N_ACTIONS // (KILLS + 2))
        victim = chooser.choice(names)
        fleet.kill(victim)
        fleet.start(victim)
    wait_progress(engine, fleet, N_ACTIONS)
    elapsed = time.monotonic() - started
    fleet.stop()

    reruns = assert_every_action_ran_exactly_once(engine)
    report(f"SIGKILL x{KILLS} ({engine.dialect.name})", seed=seed, reruns=reruns,
           reruns_per_kill=round(reruns / KILLS, 1), drain_seconds=round(elapsed, 1))


# --- 2. PostgreSQL restarted or its connections terminated ------------------------------


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL server of the suite's own, in a temporary directory, on a free port."""

    bindir: Path
    home: Path
    port: int
    as_postgres: list[str]

    @property
    def data(self) -> Path:
        return self.home / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def ctl(self, *args: str) -> None:
        done = subprocess.run(
            [*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w",
             "-t", "120", "-l", str(self.home / "server.log"), *args],
            capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, f"pg_ctl {' '.join(args)}: {done.stdout}{done.stderr}"

    def restart(self, mode: str) -> None:
        self.ctl("-m", mode, "restart")

    def terminate_connections(self, database: str) -> int:
        """``pg_terminate_backend`` on every connection to ``database`` (every AOL one)."""
        admin = create_engine(self.url())
        try:
            with admin.begin() as conn:
                return len(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database}).all())
        finally:
            admin.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """initdb, start, and at the end stop and delete a server of our own."""
    bindir = _server_binaries()
    if bindir is None:
        reason = "no PostgreSQL server binaries (initdb) to start a throwaway server"
        if os.environ.get("AOL_REQUIRE_POSTGRES", "") not in ("", "0"):
            pytest.fail(f"{reason} (AOL_REQUIRE_POSTGRES is set)")
        pytest.skip(reason)
    home = Path(tempfile.mkdtemp(prefix="aol-fault-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(home, "postgres", "postgres")
    server = ThrowawayPostgres(bindir, home, _free_port(), as_postgres)
    try:
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(server.data), "-U", "postgres",
             "-A", "trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=180,
        )
        with (server.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {server.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{home}'\nmax_connections = 100\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        server.ctl("start")
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.ctl("-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def own_database(throwaway_postgres: ThrowawayPostgres,
                 registry: PluginRegistry) -> Iterator[tuple[str, str]]:
    """A fresh database on the throwaway server with AOL's schema: (name, URL)."""
    name = f"aol_fault_{uuid.uuid4().hex[:10]}"
    admin = create_engine(throwaway_postgres.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = throwaway_postgres.url(name)
    engine = create_engine(url)
    schema.upgrade(engine, registry)
    engine.dispose()
    yield name, url
    with contextlib.suppress(Exception), admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


#: each fault is applied this many times, spread over the drain
FAULTS_PER_DRAIN = 3


@pytest.mark.parametrize("fault", ["restart-fast", "restart-immediate", "terminate"])
def test_workers_survive_postgresql_going_away_and_drain_every_action_exactly_once(
    fault: str, throwaway_postgres: ThrowawayPostgres, own_database: tuple[str, str],
    fleet_for: Callable[..., Fleet],
) -> None:
    database, url = own_database
    engine = create_engine(url)
    try:
        enqueue_drain(session_factory(engine))
        fleet = fleet_for(url)
        for i in range(WORKERS):
            fleet.start(f"w{i}")
        resumed_after: list[float] = []
        for n in range(1, FAULTS_PER_DRAIN + 1):
            wait_progress(engine, fleet, n * N_ACTIONS // (FAULTS_PER_DRAIN + 2))
            if fault == "terminate":
                throwaway_postgres.terminate_connections(database)
            else:
                throwaway_postgres.restart(fault.removeprefix("restart-"))
            back = time.monotonic()  # the server accepts connections again
            before = wait_until(lambda: succeeded(engine), "the server to answer", fleet)
            wait_until(lambda: (succeeded(engine) or 0) > before,  # noqa: B023
                       f"the workers to resume after {fault}", fleet)
            resumed_after.append(round(time.monotonic() - back, 2))
        wait_progress(engine, fleet, N_ACTIONS)
        fleet.check_alive()  # every worker survived every fault
        fleet.stop()
        reruns = assert_every_action_ran_exactly_once(engine)
    finally:
        engine.dispose()
    report(f"PostgreSQL {fault} x{FAULTS_PER_DRAIN}", resumed_after_seconds=resumed_after,
           reruns=reruns)


def test_an_idle_worker_is_woken_by_notify_again_after_postgresql_restarts(
    throwaway_postgres: ThrowawayPostgres, own_database: tuple[str, str],
    fleet_for: Callable[..., Fleet],
) -> None:
    _, url = own_database
    engine = create_engine(url)
    try:
        fleet = fleet_for(url)
        fleet.start("listener", "--poll-interval", "60")
        [first] = [enqueue_one(engine, "TEST_NOOP", {})]
        wait_until(lambda: stored(engine, first).status == Status.SUCCESS,
                   "the worker to start and run a first action", fleet)
        throwaway_postgres.restart("fast")

        def listening() -> bool:  # the server is ours: only this worker sends LISTEN
            with contextlib.suppress(DBAPIError), engine.connect() as conn:
                return bool(conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query ILIKE 'LISTEN%'")).scalar_one())
            return False

        wait_until(listening, "the worker to LISTEN again", fleet, timeout=30)
        second = enqueue_one(engine, "TEST_NOOP", {})
        wait_until(lambda: stored(engine, second).status == Status.SUCCESS,
                   "NOTIFY to wake the worker (its next poll is a minute away)", fleet,
                   timeout=30)
        fleet.stop()
    finally:
        engine.dispose()


# --- 3. SQLite on a full disk -----------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    """For a child process: files may not grow past ``limit`` bytes (the soft limit, which the
    test can lift again from outside), and writing past it is an error, not SIGXFSZ."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def _space_back(pid: int) -> None:
    resource.prlimit(pid, resource.RLIMIT_FSIZE,
                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _consistent(engine: Engine) -> None:
    """Nothing committed half-way: an action is SUCCESS exactly when its row is committed."""
    with engine.connect() as conn:
        done = set(conn.execute(select(Action.id).where(Action.status == Status.SUCCESS))
                   .scalars())
        rows = list(conn.execute(select(runs.c.action_id)).scalars())
    assert sorted(rows) == sorted(done)


FULL_DISK_ACTIONS = 300
#: what SQLite says when a write does not fit (which one depends on where the write stopped)
DISK_FULL = ("disk I/O error", "database or disk is full")


def test_sqlite_on_a_full_disk_refuses_enqueues_in_one_line_and_the_worker_resumes_after(
    tmp_path: Path, registry: PluginRegistry, fleet_for: Callable[..., Fleet],
) -> None:
    url = f"sqlite:///{tmp_path / 'cramped.db'}"
    engine = create_engine(url)
    try:
        schema.upgrade(engine, registry)
        enqueue_drain(session_factory(engine), FULL_DISK_ACTIONS)
        with engine.connect() as conn:  # the write-ahead log back to empty: a known start
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        # Room for a write-ahead log as large as the database: some work fits, then no more.
        full = _file_size_limit((tmp_path / "cramped.db").stat().st_size)

        # An action larger than the room left
        refused = subprocess.run(
            [sys.executable, "-m", "aol_core.cli", "--db", url, "enqueue", "TEST_RECORD",
             "--payload", '{"tag": "' + "x" * 100_000 + '"}'],
            capture_output=True, text=True, timeout=DEADLINE,
            preexec_fn=_file_size_limit(64 * 1024),
        )
        assert refused.returncode == 1, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert any(word in refused.stderr for word in DISK_FULL), refused.stderr
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Action)).scalar_one() == (
                FULL_DISK_ACTIONS)

        fleet = fleet_for(url, preexec=full)
        worker = fleet.start("cramped")
        wait_until(lambda: any(word in fleet.log_text() for word in DISK_FULL),
                   "the worker to report the full disk", fleet)
        _consistent(engine)
        stuck = succeeded(engine)
        assert stuck is not None and stuck < FULL_DISK_ACTIONS

        _space_back(worker.pid)
        started = time.monotonic()
        wait_progress(engine, fleet, FULL_DISK_ACTIONS)
        resumed = time.monotonic() - started
        fleet.stop()
        reruns = assert_every_action_ran_exactly_once(engine, FULL_DISK_ACTIONS)
        log = fleet.log_text()
        assert "Traceback" not in log, log[-4000:]
        problems = [line for line in log.splitlines() if any(w in line for w in DISK_FULL)]
        assert problems and all(" aol.worker: " in line for line in problems), problems[:5]
    finally:
        engine.dispose()
    report("SQLite full disk", done_before_full=stuck, reruns=reruns,
           drained_after_space_back_seconds=round(resumed, 1))


# --- 4. hostile handlers in worker processes ------------------------------------------------


HOSTILE_PLUGIN = "aol-hostile-actions"


@pytest.fixture
def hostile_url(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test's database with the hostile plugin's tables; workers load only that plugin."""
    monkeypatch.setenv("AOL_PLUGINS", HOSTILE_PLUGIN)
    engine = create_engine(db_url)
    schema.upgrade(engine, load_plugins(Settings(plugins=(HOSTILE_PLUGIN,))))
    engine.dispose()
    yield db_url


def stored(engine: Engine, action_id: int) -> Action:
    with session_factory(engine)() as session:
        found = session.get(Action, action_id)
        assert found is not None
        return found


def enqueue_one(engine: Engine, action_type: str, payload: dict[str, Any],
                **options: Any) -> int:
    with session_factory(engine)() as session, session.begin():
        [done] = enqueue_many(session, [NewAction(action_type, payload, **options)])
        return done.id


def test_a_hung_handler_holds_only_its_own_action_and_an_idle_worker_runs_the_rest(
    hostile_url: str, engine: Engine, tmp_path: Path, fleet_for: Callable[..., Fleet],
) -> None:
    release = tmp_path / "release"
    hung = enqueue_one(engine, "HOSTILE_HANG", {"release": str(release)}, priority=10)
    fleet = fleet_for(hostile_url)
    fleet.start("busy")
    try:
        wait_until(lambda: stored(engine, hung).status == Status.RUNNING,
                   "the busy worker to start the hanging handler", fleet)
        waiting = [enqueue_one(engine, "HOSTILE_WRITE", {"tag": f"w{i}"}) for i in range(5)]
        fleet.start("idle")
        wait_until(lambda: all(stored(engine, a).status == Status.SUCCESS for a in waiting),
                   "the idle worker to run the actions the busy one cannot start", fleet,
                   timeout=60)
        assert stored(engine, hung).status == Status.RUNNING
        assert {stored(engine, a).attempts for a in waiting} <= {1, 2}
    finally:
        release.touch()
    wait_until(lambda: stored(engine, hung).status == Status.SUCCESS,
               "the released handler to finish", fleet)
    fleet.stop()


@pytest.mark.parametrize("late", [
    "return",
    "raise",
])
def test_a_late_attempt_that_lost_its_lease_cannot_replace_the_winners_artifact(
    late: str, hostile_url: str, engine: Engine, tmp_path: Path,
    fleet_for: Callable[..., Fleet],
) -> None:
    release = tmp_path / "release"
    action_id = enqueue_one(engine, "HOSTILE_LATE_ARTIFACT",
                            {"release": str(release), "late": late})
    fleet = fleet_for(hostile_url)
    # Two runners, so the worker holding the late attempt may also be the one that wins.
    fleet.start("first", "--concurrency", "2")
    try:
        wait_until(lambda: stored(engine, action_id).status == Status.RUNNING,
                   "the first attempt to start", fleet)
        fleet.start("second")
        # past its 1 s timeout its lease is no longer extended; another attempt wins
        wait_until(lambda: stored(engine, action_id).status == Status.SUCCESS,
                   "a second attempt to take over and succeed", fleet)
    finally:
        release.touch()

    def refused() -> bool:
        with engine.connect() as conn:
            return any("lost its lease" in m for m in conn.execute(
                select(ExecutionLog.message).where(ExecutionLog.action_id == action_id,
                                                   ExecutionLog.attempt == 1)).scalars())

    wait_until(refused, "the late attempt to be refused", fleet)
    fleet.stop()
    won = stored(engine, action_id)
    assert (won.status, won.attempts, won.result) == (Status.SUCCESS, 2, {"attempt": 2})
    with engine.connect() as conn:
        contents = list(conn.execute(select(Artifact.content)
                                     .where(Artifact.action_id == action_id)).scalars())
    assert contents == [b"attempt 2"]
