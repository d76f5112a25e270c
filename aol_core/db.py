"""Engines and sessions: URL handling, SQLite pragmas and SQLite transactions.

On SQLite, pysqlite's own transaction handling is switched off (the recipe in SQLAlchemy's
SQLite dialect documentation) and AOL starts each transaction itself, at its first write,
with ``BEGIN IMMEDIATE``:

* the write lock is taken up front, so concurrent writers queue on the busy timeout instead
  of failing when a read snapshot cannot be upgraded ("database is locked");
* it is held only from the first write to the commit, never while a handler merely reads
  or waits on the network;
* reads before the first write see the latest committed data, as under PostgreSQL's default
  READ COMMITTED; SAVEPOINT and ROLLBACK mean what they say, so an enqueue in the caller's
  transaction rolls back with it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from aol_core.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000

#: statements that write (or may: WITH), so they open SQLite's write transaction
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "WITH", "CREATE", "DROP", "ALTER",
           "TRUNCATE", "COPY", "SAVEPOINT")
_WRITE_COUNT = "aol_writes"


def is_write(statement: str) -> bool:
    return statement.lstrip()[:9].upper().startswith(_WRITES)


def writes_so_far(conn: Connection) -> int:
    """How many writing statements ``conn`` has executed (engines from ``create_engine``)."""
    count: int = conn.info.get(_WRITE_COUNT, 0)
    return count


def note_write(conn: Connection) -> None:
    """Count a write made around SQLAlchemy (on the driver's own connection)."""
    conn.info[_WRITE_COUNT] = writes_so_far(conn) + 1


def parse_url(url: str) -> URL:
    """Accept any SQLAlchemy URL plus the bare ``postgres://`` forms hosting services hand out."""
    try:
        parsed = make_url(url)
    except Exception:
        shown = url if "@" not in url else mask_url(url)  # without "@", no credentials
        raise ConfigError(f"not a database URL: {shown!r}; use e.g. "
                          f"sqlite:///{url if '://' not in url else 'aol.db'} or "
                          "postgresql://user@host/dbname") from None
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
    """An engine for AOL: WAL and write-first transactions on SQLite; psycopg 3 on PostgreSQL."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
    else:
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
        except ModuleNotFoundError:
            raise ConfigError(
                "PostgreSQL needs psycopg 3: pip install 'aol-core[postgres]'"
            ) from None
    event.listen(engine, "before_cursor_execute", _count_writes)
    return engine


def _count_writes(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if is_write(statement):
        note_write(conn)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # AOL issues BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "before_cursor_execute")
    def begin_at_first_write(
        conn: Connection, cursor: Any, statement: str, *_args: Any
    ) -> None:
        dbapi_connection = cursor.connection
        if (
            not dbapi_connection.in_transaction
            and is_write(statement)
            and conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT"
        ):
            dbapi_connection.execute("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (AOL hands them to callers)."""
    return sessionmaker(engine, expire_on_commit=False)
