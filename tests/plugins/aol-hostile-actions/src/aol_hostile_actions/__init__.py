"""Handlers written to break AOL's promise, one for each class of fault in issue 6.

AOL promises: nothing lost, nothing run twice outside the actions in flight, every bad input
a one-line error. These handlers try to break it from the inside: writes hidden from any
reading of the SQL, a handler that discards its neighbours' work, outcomes the database
cannot store, a handler that hangs, one that outlives its lease, one that returns far too
much. Each behaviour is steered by the payload, so one test plugin covers them all; every
row a handler writes goes to ``hostile_rows``, so a test can see what was committed.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DDL,
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    event,
    insert,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Session

from aol_core import ActionContext, ActionSpec, hookimpl
from aol_core.errors import Hold, Snooze

metadata = MetaData()
rows = Table(
    "hostile_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("action_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("tag", String(100)),
)

#: values a HOSTILE_VIOLATION handler writes: unique, and at most 20 characters long
values = Table(
    "hostile_values",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", String(200), nullable=False),
    UniqueConstraint("value", name="hostile_values_unique"),
    CheckConstraint("length(value) <= 20", name="hostile_values_short"),
)


class _Base(DeclarativeBase):
    metadata = metadata


class HostileRow(_Base):
    """``hostile_rows`` for handlers that write through the ORM (``session.add``)."""

    __table__ = rows


# PostgreSQL can hide a write behind a function call or a procedure; the plugin's schema
# brings both. (SQLite has no stored code: its function is registered per connection.)
event.listen(rows, "after_create", DDL(  # type: ignore[no-untyped-call]
    "CREATE FUNCTION hostile_insert(a integer, n integer, t text) RETURNS integer "
    "LANGUAGE sql AS $$ INSERT INTO hostile_rows (action_id, attempt, tag) "
    "VALUES (a, n, t) RETURNING 1 $$"
).execute_if(dialect="postgresql"))
event.listen(rows, "after_create", DDL(  # type: ignore[no-untyped-call]
    "CREATE PROCEDURE hostile_insert_proc(a integer, n integer, t text) "
    "LANGUAGE sql AS $$ INSERT INTO hostile_rows (action_id, attempt, tag) VALUES (a, n, t) $$"
).execute_if(dialect="postgresql"))

#: ways to write that a reader of statement text would not take for a write, per database
HIDDEN_WRITES = {
    "sqlite": ("comment", "line_comment", "pragma", "select_fn"),
    "postgresql": ("comment", "line_comment", "select_fn", "do", "call"),
}
#: what ``PRAGMA user_version`` is set to by the SQLite "pragma" hidden write
PRAGMA_MARK = 4242
#: the longest a hanging handler waits for its release file, so no test can hang for ever
HANG_CAP_SECONDS = 300.0

#: types whose handlers declare ``share_transaction``, so a worker may batch them: a fault
#: must be contained in a shared transaction too (their effects file only counts runs)
SHARED_TYPES = (
    "HOSTILE_WRITE",     # writes one row (plainly or hidden), then raises if told to
    "HOSTILE_ADD",       # session.add() of a row, not flushed: a batch neighbour's pending work
    "HOSTILE_EXPUNGE",   # session.expunge_all(): discards pending ORM work it does not own
    "HOSTILE_ROLLBACK",  # session.rollback(): discards the whole transaction
)
ACTION_TYPES = (
    "HOSTILE_NAN",       # returns NaN / Infinity
    "HOSTILE_NUL",       # logs, raises, holds or returns text with a NUL character
    "HOSTILE_HUGE",      # returns, logs, raises or holds tens of megabytes
    "HOSTILE_SNOOZE",    # snoozes for its payload's "days" (out of any calendar)
    "HOSTILE_HANG",      # blocks until its release file exists
    "HOSTILE_VIOLATION", # makes the database refuse its payload's secret (the error quotes it)
)


@hookimpl
def aol_register_actions() -> list[str | ActionSpec]:
    return [
        *(ActionSpec(name, share_transaction=True) for name in SHARED_TYPES),
        *ACTION_TYPES,
        ActionSpec(
            "HOSTILE_LATE_ARTIFACT",
            description="records an artifact, then outlives its 1 s timeout and its lease",
            timeout=1.0,
        ),
    ]


@hookimpl
def aol_schema() -> MetaData:
    return metadata


def _row(context: ActionContext, tag: str) -> dict[str, Any]:
    return {"a": context.action_id, "n": context.attempt, "t": tag}


def hidden_write(session: Session, how: str, context: ActionContext, tag: str) -> None:
    """Write one row (or, for "pragma", the database header) in a way that does not look like
    a write: behind a comment, a PRAGMA, a function call, a DO block or a procedure."""
    values = _row(context, tag)
    plain = "INSERT INTO hostile_rows (action_id, attempt, tag) VALUES (:a, :n, :t)"
    if how == "plain":
        session.execute(insert(rows).values(action_id=values["a"], attempt=values["n"], tag=tag))
    elif how == "comment":
        session.execute(text(f"/* just a comment */ {plain}"), values)
    elif how == "line_comment":
        session.execute(text(f"-- just a comment\n{plain}"), values)
    elif how == "pragma":
        session.execute(text(f"PRAGMA user_version = {PRAGMA_MARK}"))
    elif how == "select_fn" and session.get_bind().dialect.name == "sqlite":
        dbapi = session.connection().connection.dbapi_connection
        assert dbapi is not None

        def hostile_insert(a: int, n: int, t: str) -> int:
            dbapi.execute(
                "INSERT INTO hostile_rows (action_id, attempt, tag) VALUES (?, ?, ?)", (a, n, t))
            return 1

        dbapi.create_function("hostile_insert", 3, hostile_insert)
        session.execute(text("SELECT hostile_insert(:a, :n, :t)"), values)
    elif how == "select_fn":
        session.execute(text("SELECT hostile_insert(:a, :n, :t)"), values)
    elif how == "do":  # DO takes no parameters: the values go in as literals
        session.execute(text(
            f"DO $$ BEGIN INSERT INTO hostile_rows (action_id, attempt, tag) VALUES "
            f"({int(values['a'])}, {int(values['n'])}, '{tag.replace(chr(39), '')}'); END $$"))
    elif how == "call":
        session.execute(text("CALL hostile_insert_proc(:a, :n, :t)"), values)
    else:
        raise ValueError(f"unknown hidden write {how!r}")


def wait_for(release: str, cap: float = HANG_CAP_SECONDS) -> bool:
    """Block until the file ``release`` exists (True) or ``cap`` seconds pass (False)."""
    deadline = time.monotonic() + cap
    while not Path(release).exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def external_effect(path: str, context: ActionContext, tag: str) -> None:
    """Something outside the database (a post, an e-mail): a line appended to a file, which
    no rollback takes back, so a test can count how often the handler really ran."""
    with open(path, "a") as effects:
        effects.write(f"{context.action_id} {context.attempt} {tag}\n")


@hookimpl
def handle_action(
    action_type: str, session: Session, payload: dict[str, Any], context: ActionContext
) -> Any:
    tag = str(payload.get("tag", action_type))
    if "effects" in payload:
        external_effect(payload["effects"], context, tag)
    if action_type == "HOSTILE_WRITE":
        hidden_write(session, payload.get("how", "plain"), context, tag)
        if payload.get("fail"):
            raise RuntimeError(f"failing after a {payload.get('how', 'plain')} write")
        return {"tag": tag}
    if action_type == "HOSTILE_ADD":
        session.add(HostileRow(action_id=context.action_id, attempt=context.attempt, tag=tag))
        return {"tag": tag}
    if action_type == "HOSTILE_EXPUNGE":
        session.expunge_all()
        return None
    if action_type == "HOSTILE_ROLLBACK":
        session.rollback()
        return None
    if action_type == "HOSTILE_NAN":
        return {"value": float(payload.get("value", "nan"))}
    if action_type == "HOSTILE_NUL":
        return _nul(payload.get("where", "log"), context)
    if action_type == "HOSTILE_HUGE":
        return _huge(payload.get("where", "result"), int(payload.get("mb", 20)), context)
    if action_type == "HOSTILE_SNOOZE":
        raise Snooze(timedelta(days=float(payload["days"])), "for ever")
    if action_type == "HOSTILE_HANG":  # writes nothing: on SQLite it would hold the lock
        context.log("INFO", "hanging until released")
        wait_for(payload["release"])
        return {"released": True}
    if action_type == "HOSTILE_VIOLATION":
        violate(session, payload["violate"], str(payload["secret"]))
        return None
    if action_type == "HOSTILE_LATE_ARTIFACT":
        context.record_artifact("proof.txt", f"attempt {context.attempt}")
        if context.attempt == 1:  # outlive the timeout, the lease, and the next attempt
            wait_for(payload["release"])
            if payload.get("late") == "raise":
                raise RuntimeError("the late attempt fails after its lease was lost")
        return {"attempt": context.attempt}
    raise AssertionError(f"routed an undeclared type {action_type}")


def _nul(where: str, context: ActionContext) -> Any:
    if where == "log":
        context.log("INFO", "before\x00after")
        return None
    if where == "raise":
        raise RuntimeError("a NUL\x00in the error")
    if where == "hold":
        raise Hold("a NUL\x00in the reason")
    return {"text": "a NUL\x00in the result"}


def _huge(where: str, megabytes: int, context: ActionContext) -> Any:
    blob = "x" * (megabytes * 1024 * 1024)
    if where == "log":
        context.log("INFO", blob)
        return None
    if where == "raise":
        raise RuntimeError(blob)
    if where == "hold":
        raise Hold(blob)
    return {"blob": blob}


def violate(session: Session, how: str, secret: str) -> None:
    """Make the database refuse a statement holding ``secret``, whose error detail (or, for
    a conversion, its primary message) quotes it: a second row with the same unique value,
    a value longer than the check constraint allows, or text cast to an integer (which
    SQLite converts without an error)."""
    if how == "unique":
        session.execute(insert(values), [{"value": secret}, {"value": secret}])
    elif how == "check":
        session.execute(insert(values).values(value=secret + "-" * 20))
    elif how == "convert":
        session.execute(text("SELECT CAST(:secret AS INTEGER)"), {"secret": secret})
    else:
        raise ValueError(f"unknown violation {how!r}")
