"""PostgreSQL behind a real PgBouncer in transaction pooling mode, the usual way to run many
workers on one server: consecutive transactions of one client run on different server
connections, so nothing may live on a server connection between transactions (prepared
statements, LISTEN).

Each test starts its own ``pgbouncer`` process (Debian's package) on a free loopback port,
``pool_mode = transaction``, in front of a throwaway database on the test server; the
server's own configuration is not touched. A missing ``pgbouncer`` skips these tests, or
fails them under ``AOL_REQUIRE_POSTGRES=1`` (as in CI).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from aol_test_actions import runs
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from aol_core import schema
from aol_core.db import create_engine, parse_url, session_factory
from aol_core.drivers import driver_for
from aol_core.drivers.postgresql import PgListener
from aol_core.models import actions_table
from aol_core.plugins import PluginRegistry
from aol_core.queue import NewAction, enqueue_many
from aol_core.timeutil import utcnow
from helpers import aol

DEADLINE = 120.0
#: fewer server connections than the workers have client connections, so they share them
POOL_SIZE = 3
WORKERS = 3
ACTIONS = 150


def wait_for(condition: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        reason = "pgbouncer is not installed (apt-get install -y pgbouncer)"
        if os.environ.get("AOL_REQUIRE_POSTGRES", "") not in ("", "0"):
            pytest.fail(f"{reason}; AOL_REQUIRE_POSTGRES is set")
        pytest.skip(reason)
    return found


@pytest.fixture
def direct_url(aol_postgres_server: str) -> Iterator[str]:
    """A throwaway database on the test server (PgBouncer passes no search_path, so the
    per-test schema the other PostgreSQL tests use would not reach the server)."""
    name = f"aol_pgb_{uuid.uuid4().hex[:12]}"
    admin = parse_url(aol_postgres_server).set(drivername="postgresql")
    admin_dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def bounced_url(pgbouncer_binary: str, direct_url: str) -> Iterator[str]:
    """The same database through a PgBouncer of this test's own, in transaction mode."""
    server = make_url(direct_url)
    user = server.username or "postgres"
    workdir = Path(os.path.realpath(os.environ.get("TMPDIR", "/tmp"))) / (
        f"aol-pgbouncer-{uuid.uuid4().hex[:8]}")
    workdir.mkdir()
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    port = _free_port()
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.host or '127.0.0.1'} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {POOL_SIZE}\nmax_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits\n")
    command = [pgbouncer_binary]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        account = pwd.getpwnam("postgres")
        os.chown(workdir, account.pw_uid, account.pw_gid)
        command += ["-u", account.pw_name]
    log_path = workdir / "pgbouncer.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, str(workdir / "pgbouncer.ini")],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    url = server.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    def accepting() -> bool:
        assert process.poll() is None, f"pgbouncer exited: {log_path.read_text()}"
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError:
            return False
        return True

    try:
        wait_for(accepting, "pgbouncer to accept connections", timeout=30)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def bounced_engine(bounced_url: str, registry: PluginRegistry) -> Iterator[Engine]:
    engine = create_engine(bounced_url)
    schema.upgrade(engine, registry)
    yield engine
    engine.dispose()


def test_a_statement_run_again_on_another_server_connection_still_runs(
    bounced_engine: Engine,
) -> None:
    # psycopg would prepare the statement on the server after its fifth run; the holder's
    # transaction then takes that server connection, and the sixth run gets another one
    has_due = driver_for(bounced_engine).has_due
    with bounced_engine.connect() as runner, bounced_engine.connect() as holder:
        for _ in range(6):
            assert not has_due(runner, ["TEST_NOOP"], utcnow())
            runner.commit()
        holder.execute(text("SELECT 1"))
        assert not has_due(runner, ["TEST_NOOP"], utcnow())
        holder.rollback()


def test_workers_drain_single_enqueues_exactly_once_through_pgbouncer(
    bounced_url: str, tmp_path: Path
) -> None:
    assert aol("db", "upgrade", db_url=bounced_url).returncode == 0
    engine = create_engine(bounced_url)
    sessions = session_factory(engine)
    ids = []
    for n in range(ACTIONS):  # one transaction each, as an application enqueues
        with sessions() as session, session.begin():
            ids += [e.id for e in enqueue_many(session, [NewAction("TEST_RECORD", {"n": n})])]
    logs = [(tmp_path / f"worker-{i}.log").open("wb") for i in range(WORKERS)]
    workers = [subprocess.Popen(
        [sys.executable, "-m", "aol_core.cli", "--db", bounced_url, "worker",
         "--name", f"bounced-{i}", "--poll-interval", "0.2"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env={**os.environ},
    ) for i, log in enumerate(logs)]

    def finished() -> bool:
        for worker in workers:
            assert worker.poll() is None, f"a worker exited:\n{_logs(tmp_path)}"
        with engine.connect() as conn:
            return conn.scalar(select(func.count()).where(
                actions_table.c.status == "SUCCESS")) == ACTIONS

    try:
        wait_for(finished, f"{WORKERS} workers to drain {ACTIONS} actions")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=60) for worker in workers]
        for log in logs:
            log.close()
    with engine.connect() as conn:
        ran = dict(conn.execute(select(runs.c.action_id, func.count())
                                .group_by(runs.c.action_id)).all())
    engine.dispose()
    assert ran == dict.fromkeys(ids, 1)
    assert codes == [0] * WORKERS, _logs(tmp_path)
    assert "prepared statement" not in _logs(tmp_path)


def _logs(tmp_path: Path) -> str:
    return "".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                   for p in sorted(tmp_path.glob("worker-*.log")))


def test_the_cli_works_through_pgbouncer(bounced_url: str) -> None:
    assert aol("db", "upgrade", db_url=bounced_url).returncode == 0
    for n in range(7):  # more than psycopg's prepare threshold, on a pool shared with others
        done = aol("enqueue", "TEST_NOOP", f'{{"n": {n}}}', db_url=bounced_url)
        assert done.returncode == 0, done.stderr
    listed = aol("actions", "list", db_url=bounced_url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("TEST_NOOP") == 7
    drained = aol("worker", "--burst", db_url=bounced_url)
    assert drained.returncode == 0, drained.stderr
    listed = aol("actions", "list", "--status", "SUCCESS", db_url=bounced_url)
    assert listed.stdout.count("TEST_NOOP") == 7, listed.stdout + listed.stderr


def test_a_listener_behind_transaction_pooling_says_so_and_leaves_the_worker_polling(
    bounced_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aol.worker")
    listener = PgListener(bounced_engine, threading.Event())
    try:
        wait_for(lambda: listener.backend_pid is None, "the listener to give up")
    finally:
        listener.stop()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "AOL_LISTEN_URL" in warnings[0]


def test_a_listener_on_the_direct_url_wakes_the_worker_on_work_enqueued_through_pgbouncer(
    bounced_engine: Engine, direct_url: str
) -> None:
    wake = threading.Event()
    listener = PgListener(bounced_engine, wake, listen_url=direct_url)
    try:
        with bounced_engine.begin() as conn:
            driver_for(conn).notify(conn)
        assert wake.wait(DEADLINE)
    finally:
        listener.stop()


def test_a_worker_listens_where_aol_listen_url_says(direct_url: str, tmp_path: Path) -> None:
    # nothing listens on port 1: the worker says it cannot LISTEN there, and polls
    assert aol("db", "upgrade", db_url=direct_url).returncode == 0
    nowhere = make_url(direct_url).set(port=1).render_as_string(hide_password=False)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "aol_core.cli", "--db", direct_url, "worker"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "AOL_LISTEN_URL": nowhere})
    try:
        wait_for(lambda: "LISTEN unavailable" in log_path.read_text(errors="replace"),
                 "the worker to report the listen URL unreachable")
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log_path.read_text(errors="replace")


def test_a_listen_url_that_is_not_postgresql_is_refused_in_one_line(tmp_path: Path) -> None:
    done = aol("worker", db_url=f"sqlite:///{tmp_path / 'aol.db'}",
               env={"AOL_LISTEN_URL": "sqlite:///elsewhere.db"})
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "aol: error: AOL_LISTEN_URL must be a postgresql:// URL (only PostgreSQL can LISTEN)"]
