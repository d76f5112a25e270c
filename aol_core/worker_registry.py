"""Workers announce themselves and heartbeat, so ``aol health`` can tell who is alive."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import ColumnElement

from aol_core.errors import AOLError
from aol_core.models import workers_table as workers
from aol_core.timeutil import clock_is_fixed

log = logging.getLogger("aol.worker")


@dataclass(frozen=True)
class WorkerIdentity:
    name: str
    host: str
    pid: int

    @classmethod
    def here(cls, name: str | None) -> WorkerIdentity:
        pid = os.getpid()
        return cls(name or f"{socket.gethostname()}:{pid}", this_host(), pid)


#: how Linux names the first pid namespace (the machine's own, outside any container)
INITIAL_PID_NAMESPACE = "pid:[4026531836]"


def this_host() -> str:
    """Where this process runs, as registrations record it: the host name, and in a
    container (a pid namespace of its own) that namespace too, as ``host (pid:[N])``: a pid
    means nothing in another namespace, and containers may share a host name (host
    networking)."""
    host = socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:  # not Linux: one pid namespace
        return host
    return host if namespace == INITIAL_PID_NAMESPACE else f"{host} ({namespace})"


def register(
    conn: Connection,
    identity: WorkerIdentity,
    *,
    versions: dict[str, Any],
    action_types: Sequence[str],
    degraded: bool,
    now: datetime,
    alive_for: timedelta,
) -> None:
    """Add this worker; a live worker of the same name is refused, a dead one replaced.

    Dead: stopped, silent past its ``alive_until``, or registered from this host by a
    process that is gone (see :func:`left_behind`), so a worker restarted at once after a
    crash (by a supervisor) takes its own name back instead of being refused until the
    crashed one's registration expires. A dead registration is deleted by a DELETE that
    names exactly it, and the INSERT relies on the primary key, so of two workers starting
    with one name at once one registers and the other finds it live.
    """
    expired = workers.c.stopped_at.is_not(None) | (workers.c.alive_until <= now)
    conn.execute(delete(workers).where(workers.c.name == identity.name, expired))
    holder = None
    for _ in range(2):  # once more after a registration left behind was deleted
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(workers).values(
                        name=identity.name, host=identity.host, pid=identity.pid,
                        versions=versions, action_types=sorted(action_types),
                        degraded=degraded, started_at=now, last_heartbeat=now,
                        alive_until=now + alive_for, stopped_at=None,
                    )
                )
            return
        except IntegrityError:
            holder = conn.execute(
                select(workers).where(workers.c.name == identity.name)).one_or_none()
        if holder is not None and not left_behind(holder.host, holder.pid, holder.started_at):
            break
        if holder is not None:
            log.info("worker %r: taking over the registration of process %d on %s, which "
                     "is gone", identity.name, holder.pid, holder.host)
            conn.execute(delete(workers).where(
                workers.c.name == holder.name, workers.c.host == holder.host,
                workers.c.pid == holder.pid, workers.c.started_at == holder.started_at))
    where = f" (process {holder.pid} on {holder.host})" if holder is not None else ""
    raise AOLError(
        f"a live worker is already named {identity.name!r}{where}; choose another --name"
    )


def left_behind(host: str, pid: int, registered_at: datetime) -> bool:
    """Whether a registration was made on this host (:func:`this_host`: in this container)
    by a process that no longer runs: no process has its pid, or the one that has it
    started after the registration was made (the pid was reused). Anything uncertain
    counts as running: another host or container, a system that cannot tell (not POSIX), a
    process whose start cannot be read (no ``/proc``), a test's fixed clock."""
    if host != this_host() or os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # exists as another user's; not a pid at all
        return False
    process = process_status(pid)
    if process is None:
        return False
    state, started = process
    if state == ZOMBIE:  # exited, not yet reaped by its parent
        return True
    return not clock_is_fixed() and started > registered_at + START_TIME_RESOLUTION


#: how far a process's start time read from ``/proc`` may be off (boot time is in seconds)
START_TIME_RESOLUTION = timedelta(seconds=2)


#: the state ``/proc`` gives a process that exited and waits for its parent to reap it
ZOMBIE = "Z"


def process_status(pid: int) -> tuple[str, datetime] | None:
    """Process ``pid``'s state (a letter: R, S, Z...) and when it started, from Linux's
    ``/proc``; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        # the command name, in parentheses, may hold spaces: the fields follow its last ")"
        fields = stat[stat.rindex(")") + 2:].split()
        seconds = int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return fields[0], datetime.fromtimestamp(seconds, UTC)


def heartbeat(conn: Connection, identity: WorkerIdentity, now: datetime,
              alive_for: timedelta) -> bool:
    """Keep this worker's registration alive; False when the name's registration is no
    longer this process's (it fell silent past its lease, frozen or cut off, and another
    worker registered the name): the worker must then stop, so that two live workers never
    share a name."""
    return bool(conn.execute(
        update(workers)
        .where(*_mine(identity))
        .values(last_heartbeat=now, alive_until=now + alive_for)
    ).rowcount)


def deregister(conn: Connection, identity: WorkerIdentity, now: datetime) -> None:
    """Mark this worker stopped (not a registration of its name made by another since)."""
    conn.execute(update(workers).where(*_mine(identity)).values(stopped_at=now,
                                                               alive_until=now))


def _mine(identity: WorkerIdentity) -> tuple[ColumnElement[bool], ...]:
    return (workers.c.name == identity.name, workers.c.host == identity.host,
            workers.c.pid == identity.pid)


def live_workers(conn: Connection, now: datetime) -> list[Any]:
    return list(
        conn.execute(
            select(workers).where(workers.c.stopped_at.is_(None), workers.c.alive_until > now)
        )
    )


def prune_gone(conn: Connection, gone_before: datetime) -> int:
    """Delete registrations of workers stopped, or silent, since before ``gone_before``."""
    return int(conn.execute(delete(workers).where(workers.c.alive_until < gone_before)).rowcount)
