"""One driver per database behind one interface; the only home of database-specific SQL."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from aol_core.drivers.base import Claim, Driver, Listener
from aol_core.drivers.postgresql import PostgreSQLDriver
from aol_core.drivers.sqlite import SQLiteDriver

_DRIVERS: dict[str, Driver] = {"sqlite": SQLiteDriver(), "postgresql": PostgreSQLDriver()}


def driver_for(bind: Engine | Connection) -> Driver:
    return _DRIVERS[bind.dialect.name]


__all__ = ["Claim", "Driver", "Listener", "driver_for"]
