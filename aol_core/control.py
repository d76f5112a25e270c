"""The global switches every worker obeys: pause, kill and proof mode."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from aol_core.models import control_table as control
from aol_core.timeutil import utcnow

MEANINGS = {
    "paused": "workers stop claiming new actions; running ones finish",
    "killed": "every worker stops (finishing running actions) and new workers exit at once",
    "proof_mode": "every action runs in proof mode: handlers record what they would do",
}


@dataclass(frozen=True)
class Flags:
    paused: bool = False
    killed: bool = False
    proof_mode: bool = False


def read_flags(conn: Connection) -> Flags:
    row = conn.execute(select(control.c.paused, control.c.killed, control.c.proof_mode)).first()
    if row is None:
        return Flags()
    return Flags(bool(row.paused), bool(row.killed), bool(row.proof_mode))


def set_flag(conn: Connection, name: str, value: bool) -> None:
    if name not in MEANINGS:
        raise ValueError(f"unknown control flag {name!r}")
    values = {name: value, "updated_at": utcnow()}
    conn.execute(update(control).where(control.c.id == 1).values(values))
