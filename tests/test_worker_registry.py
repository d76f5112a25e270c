"""Worker registration: a name belongs to one live worker; a registration left behind on this
host by a process that is gone (a crash, SIGKILL) is taken over at once, so a supervisor's
restart under the same name starts instead of being refused until it expires."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from aol_core import worker_registry
from aol_core.errors import AOLError
from aol_core.models import workers_table
from aol_core.timeutil import utcnow
from aol_core.worker_registry import WorkerIdentity

HOST = worker_registry.this_host()
#: long enough that no registration in these tests expires while they run
LEASE = timedelta(hours=1)


def register(engine: Engine, identity: WorkerIdentity, now: datetime | None = None) -> None:
    with engine.begin() as conn:
        worker_registry.register(conn, identity, versions={}, action_types=[],
                                 degraded=False, now=now or utcnow(), alive_for=LEASE)


def registered_pid(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(workers_table.c.pid).where(
            workers_table.c.name == name)))


def exited_pid() -> int:
    """The pid of a process that ran and exited (if the system reuses it, the new process
    started after any registration made later: gone either way)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def running_pid() -> Iterator[int]:
    """The pid of a live process that started before the test registered it."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield child.pid
    child.kill()
    child.wait()


def test_a_registration_whose_process_is_gone_is_taken_over(engine: Engine) -> None:
    register(engine, WorkerIdentity("w", HOST, exited_pid()))
    register(engine, WorkerIdentity("w", HOST, os.getpid()))
    assert registered_pid(engine, "w") == os.getpid()


def test_a_registration_older_than_the_process_now_holding_its_pid_is_taken_over(
    engine: Engine,
) -> None:
    """The pid was reused (here: by this test's own process, as after a container restart)."""
    process = worker_registry.process_status(os.getpid())
    if process is None:
        pytest.skip("this system does not tell when a process started (no /proc)")
    _, long_ago = process
    register(engine, WorkerIdentity("w", HOST, os.getpid()), now=long_ago - timedelta(hours=1))
    register(engine, WorkerIdentity("w", HOST, os.getpid()))
    with engine.connect() as conn:
        started = conn.scalar(select(workers_table.c.started_at))
    assert started is not None and started > long_ago


def test_a_registration_of_an_exited_process_not_yet_reaped_is_taken_over(
    engine: Engine,
) -> None:
    """A zombie: the process exited, its parent has not collected it, its pid still shows."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 60
        while (status := worker_registry.process_status(child.pid)) is not None \
                and status[0] != worker_registry.ZOMBIE:
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.05)
        if status is None:
            pytest.skip("this system does not tell a process's state (no /proc)")
        register(engine, WorkerIdentity("w", HOST, child.pid))
        register(engine, WorkerIdentity("w", HOST, os.getpid()))
        assert registered_pid(engine, "w") == os.getpid()
    finally:
        child.wait()


def test_a_live_process_keeps_its_name(engine: Engine, running_pid: int) -> None:
    register(engine, WorkerIdentity("w", HOST, running_pid))
    with pytest.raises(AOLError, match=rf"a live worker is already named 'w' \(process "
                                       rf"{running_pid} on .*\); choose another --name"):
        register(engine, WorkerIdentity("w", HOST, os.getpid()))
    assert registered_pid(engine, "w") == running_pid


def test_a_registration_from_another_host_is_never_taken_over(engine: Engine) -> None:
    gone_here = exited_pid()
    register(engine, WorkerIdentity("w", f"not-{HOST}", gone_here))
    with pytest.raises(AOLError, match="a live worker is already named 'w'"):
        register(engine, WorkerIdentity("w", HOST, os.getpid()))
    assert registered_pid(engine, "w") == gone_here


def test_a_registration_from_another_container_on_this_host_is_never_taken_over(
    engine: Engine,
) -> None:
    """Containers may share a host name (host networking), not their pids: a registration
    names the container's pid namespace with the host."""
    gone_here = exited_pid()
    register(engine, WorkerIdentity("w", f"{HOST} (pid:[4026532999])", gone_here))
    with pytest.raises(AOLError, match="a live worker is already named 'w'"):
        register(engine, WorkerIdentity("w", HOST, os.getpid()))
    assert registered_pid(engine, "w") == gone_here


def test_this_host_names_a_containers_pid_namespace() -> None:
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        pytest.skip("no pid namespaces here (not Linux)")
    assert WorkerIdentity.here(None).host == worker_registry.this_host()
    assert (namespace in worker_registry.this_host()) == (
        namespace != worker_registry.INITIAL_PID_NAMESPACE)


def test_a_name_taken_over_belongs_to_the_worker_that_took_it(
    engine: Engine, running_pid: int
) -> None:
    register(engine, WorkerIdentity("w", HOST, exited_pid()))
    register(engine, WorkerIdentity("w", HOST, running_pid))
    with pytest.raises(AOLError, match="a live worker is already named 'w'"):
        register(engine, WorkerIdentity("w", HOST, os.getpid()))
    assert registered_pid(engine, "w") == running_pid
