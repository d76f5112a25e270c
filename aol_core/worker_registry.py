"""Workers announce themselves and heartbeat, so ``aol health`` can tell who is alive."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from aol_core.errors import AOLError
from aol_core.models import workers_table as workers


@dataclass(frozen=True)
class WorkerIdentity:
    name: str
    host: str
    pid: int

    @classmethod
    def here(cls, name: str | None) -> WorkerIdentity:
        host, pid = socket.gethostname(), os.getpid()
        return cls(name or f"{host}:{pid}", host, pid)


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

    The dead one is deleted by a conditional DELETE and the INSERT relies on the primary
    key, so two workers starting with one name at once cannot both register.
    """
    dead = workers.c.stopped_at.is_not(None) | (workers.c.alive_until <= now)
    conn.execute(delete(workers).where(workers.c.name == identity.name, dead))
    try:
        with conn.begin_nested():
            conn.execute(
                insert(workers).values(
                    name=identity.name, host=identity.host, pid=identity.pid, versions=versions,
                    action_types=sorted(action_types), degraded=degraded, started_at=now,
                    last_heartbeat=now, alive_until=now + alive_for, stopped_at=None,
                )
            )
    except IntegrityError:
        raise AOLError(
            f"a live worker is already named {identity.name!r}; choose another --name"
        ) from None


def heartbeat(conn: Connection, name: str, now: datetime, alive_for: timedelta) -> None:
    conn.execute(
        update(workers)
        .where(workers.c.name == name)
        .values(last_heartbeat=now, alive_until=now + alive_for)
    )


def deregister(conn: Connection, name: str, now: datetime) -> None:
    conn.execute(
        update(workers).where(workers.c.name == name).values(stopped_at=now, alive_until=now)
    )


def live_workers(conn: Connection, now: datetime) -> list[Any]:
    return list(
        conn.execute(
            select(workers).where(workers.c.stopped_at.is_(None), workers.c.alive_until > now)
        )
    )


def prune_gone(conn: Connection, gone_before: datetime) -> int:
    """Delete registrations of workers stopped, or silent, since before ``gone_before``."""
    return int(conn.execute(delete(workers).where(workers.c.alive_until < gone_before)).rowcount)
