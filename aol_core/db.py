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

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from aol_core.errors import ConfigError, SchemaNotCurrent

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
        raise ConfigError(f"not a database URL: {mask_url(url)!r}") from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {parsed.get_backend_name()!r} in {mask_url(url)}: "
            "AOL runs on sqlite:// or postgresql://"
        )
    return parsed


#: query parameters that carry a secret (libpq's password and sslpassword, and the like)
_SECRET_PARAMETER = re.compile(r"pass|secret|token|pwd", re.IGNORECASE)
MASK = "***"


def mask_url(url: str | URL) -> str:
    """The URL with every credential replaced by ***, safe to print or store: the password
    after the user name, and query parameters such as ``?password=`` or ``sslpassword=``."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception:
        return "<unparseable URL>"
    secrets = {key: MASK for key in parsed.query if _SECRET_PARAMETER.search(key)}
    shown = parsed.update_query_dict(secrets).render_as_string(hide_password=True)
    return shown.replace(f"={quote(MASK)}", f"={MASK}")


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for AOL: WAL and write-first transactions on SQLite; psycopg 3 on PostgreSQL.

    Statement parameters (payloads, results) are left out of error messages, which end up in
    stored errors and logs."""
    parsed = parse_url(url)
    kwargs.setdefault("hide_parameters", True)
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


def require_existing_database(url: str) -> None:
    """Refuse a SQLite file that does not exist, so that reading does not create it."""
    path = sqlite_file(parse_url(url))
    if path is not None and not path.exists():
        raise SchemaNotCurrent(f"database file {path} does not exist; "
                               "create it with aol db upgrade")


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names; None for other databases and in-memory ones."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = url.database
    if url.query.get("uri") == "true":  # sqlite:///file:path?mode=...&uri=true
        parts = urlsplit(database)
        if "mode=memory" in parts.query:
            return None
        database = unquote(parts.path)
    return Path(database)


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
