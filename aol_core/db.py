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

Which statement is the first write is not guessed from its text (a comment, a PRAGMA or
``SELECT f()`` of a function that writes would fool any guess): outside a transaction a
connection is kept ``PRAGMA query_only``, so SQLite itself refuses the first write, undoing
it whole; the connection then begins ``BEGIN IMMEDIATE``, lifts query_only and runs the
statement again. No statement can write outside a transaction, so every write a handler
makes commits or rolls back with its action. Statements that plainly write take the lock
up front instead, which saves the refused first try and is safe whatever the text says.

PostgreSQL needs none of this: psycopg runs every statement of a non-autocommit connection
in the open transaction.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from aol_core.errors import ConfigError, SchemaNotCurrent

SQLITE_BUSY_TIMEOUT_MS = 30_000

#: statements that plainly write (or may: WITH, SAVEPOINT), so they lock before running
_PLAIN_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH", "CREATE", "DROP", "ALTER",
                 "SAVEPOINT")


class _ContainedConnection(sqlite3.Connection):
    """A pysqlite connection that writes only inside a transaction (see the module text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.query_only = False
        self._pragmas = super().cursor()

    def cursor(self, factory: Any = None) -> Any:  # pysqlite's signature
        return super().cursor(factory or _ContainedCursor)

    # pysqlite's shortcuts make their cursor without calling cursor(): route them through it
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> Any:
        return self.cursor().executescript(sql_script)

    def set_query_only(self, on: bool) -> None:
        self._pragmas.execute("PRAGMA query_only=ON" if on else "PRAGMA query_only=OFF")
        self.query_only = on

    def begin_writing(self) -> None:
        """Take the write lock now, in a transaction that may write."""
        self.set_query_only(False)  # first: query_only refuses BEGIN IMMEDIATE too
        if not self.in_transaction:
            try:
                self._pragmas.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.set_query_only(True)
                raise


def _refused_write(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY


class _ContainedCursor(sqlite3.Cursor):
    connection: _ContainedConnection

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        self._contain(sql)
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not (self.connection.query_only and _refused_write(exc)):
                raise
        self.connection.begin_writing()  # the refused statement was undone whole: run it again
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        self._contain(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        except sqlite3.OperationalError as exc:
            if not (self.connection.query_only and _refused_write(exc)):
                raise
        self.connection.begin_writing()
        return super().executemany(sql, seq_of_parameters)

    def executescript(self, sql_script: str, /) -> Any:
        raise sqlite3.NotSupportedError(
            "executescript would commit the open transaction first: execute the statements "
            "one at a time, so they commit or roll back with the action")

    def _contain(self, sql: str) -> None:
        connection = self.connection
        if connection.in_transaction:
            return
        if sql.lstrip()[:9].upper().startswith(_PLAIN_WRITES):
            connection.begin_writing()
        elif not connection.query_only:  # a transaction ended since the last statement
            connection.set_query_only(True)


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
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                          "factory": _ContainedConnection},
            **kwargs,
        )
        _configure_sqlite(engine)
    else:
        connect_args = {**_PG_CONNECT_ARGS, **kwargs.pop("connect_args", {})}
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args,
                                      **kwargs)
        except ModuleNotFoundError:
            raise ConfigError(
                "PostgreSQL needs psycopg 3: pip install 'aol-core[postgres]'"
            ) from None
        event.listen(engine, "connect", _drop_stray_notifications)
    return engine


#: No server-side prepared statements: psycopg prepares a statement on the server after its
#: fifth run on a connection, and a pooler in transaction mode (PgBouncer, the usual way to
#: run many workers) hands the next transaction to another server connection, which has no
#: such statement. AOL's hot statements each move a whole batch, so planning them again
#: costs little (docs/scaling.md).
_PG_CONNECT_ARGS: dict[str, Any] = {"prepare_threshold": None}


def _ignore_notification(_notification: Any) -> None:
    """AOL's pooled connections never LISTEN (the listener has a connection of its own)."""


def _drop_stray_notifications(dbapi_connection: Any, _record: Any) -> None:
    """Behind a pooler in transaction mode a server connection that once ran LISTEN passes
    its notifications to whichever client runs the next transaction on it; psycopg would
    keep each one on that client's connection until someone reads them, which no one does."""
    dbapi_connection.add_notify_handler(_ignore_notification)


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


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # AOL issues BEGIN itself
        cursor = dbapi_connection.cursor(sqlite3.Cursor)  # a plain one: nothing to contain yet
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        dbapi_connection.set_query_only(True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit (AOL hands them to callers)."""
    return sessionmaker(engine, expire_on_commit=False)
