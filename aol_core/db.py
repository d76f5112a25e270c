"""Engines and sessions: URL handling, SQLite pragmas and explicit transactions.

pysqlite's own transaction handling is switched off so that SQLAlchemy's BEGIN, SAVEPOINT
and ROLLBACK mean what they say (the recipe in SQLAlchemy's SQLite dialect documentation):
without it an enqueue in the caller's transaction would not roll back with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from aol_core.errors import ConfigError

#: execution option that makes a SQLite transaction take the write lock at BEGIN
SQLITE_IMMEDIATE = {"aol_sqlite_begin": "IMMEDIATE"}

SQLITE_BUSY_TIMEOUT_MS = 30_000


def parse_url(url: str) -> URL:
    """Accept any SQLAlchemy URL plus the bare ``postgres://`` forms hosting services hand out."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError(f"not a database URL: {mask_url(url)!r}") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {parsed.get_backend_name()!r} in {mask_url(url)}: "
            "AOL runs on sqlite:// or postgresql://"
        )
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ***, safe to print."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine ready for AOL: WAL and explicit transactions on SQLite, psycopg 3 on PostgreSQL."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    try:
        return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
    except ModuleNotFoundError:
        raise ConfigError(
            "PostgreSQL needs psycopg 3: pip install 'aol-core[postgres]'"
        ) from None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("aol_sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN, so it waits
    its turn (busy timeout) instead of failing when a read must be upgraded to a write."""
    options = SQLITE_IMMEDIATE if is_sqlite(engine) else {}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (AOL hands them to callers)."""
    return sessionmaker(engine, expire_on_commit=False)


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"
