"""Handlers whose behaviour the payload dictates, so tests can make any outcome happen.

Every run of TEST_RECORD (and of TEST_FAIL with ``write_first``) inserts a row into
``test_actions_runs`` in the handler's transaction: committed rows prove exactly-once
effects, missing rows prove rollbacks. TEST_SQL sends whatever SQL its payload holds;
TEST_BLOCK runs until the test sets ``RELEASE`` or the action is cancelled. The TEST_LIMITED_*
types carry rate limits and concurrency caps; their handler writes the span it ran in
(wall-clock seconds) to ``test_actions_spans``, so tests can measure overlap.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, func, insert, select, text
from sqlalchemy.orm import Session, registry

from aol_core import (
    ActionContext,
    ActionSpec,
    Cap,
    Hold,
    PermanentError,
    RateLimit,
    RetryableError,
    Snooze,
    enqueue,
    hookimpl,
)

metadata = MetaData()
runs = Table(
    "test_actions_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("action_id", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("tag", String(100)),
    Column("worker", String(255)),
    Column("pid", Integer),
    Column("proof", Integer),
)

spans = Table(
    "test_actions_spans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("action_id", Integer, nullable=False),
    Column("account", String(100)),
    Column("began", Float, nullable=False),
    Column("ended", Float, nullable=False),
)
#: the limits the TEST_LIMITED_* types declare
RATE = RateLimit(3, timedelta(seconds=2))
CAP = Cap(2)
RATE_PER_ACCOUNT = RateLimit(2, timedelta(seconds=2), key="account")
CAP_PER_ACCOUNT = Cap(1, key="account")
LIMITED_TYPES = {
    "TEST_LIMITED_RATE": {"rate_limit": RATE},
    "TEST_LIMITED_CAP": {"concurrency": CAP},
    "TEST_LIMITED_PER_ACCOUNT": {"rate_limit": RATE_PER_ACCOUNT,
                                 "concurrency": CAP_PER_ACCOUNT},
}


class Run:
    """A row of ``test_actions_runs`` as an ORM object (for handlers that ``session.add``)."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


registry().map_imperatively(Run, runs)

#: TEST_BLOCK sets BLOCKED when it starts and runs until RELEASE is set (or it is cancelled)
BLOCKED = threading.Event()
RELEASE = threading.Event()
#: TEST_BLOCK sets this when it saw ``context.cancelled``
SAW_CANCEL = threading.Event()


@hookimpl
def aol_register_actions() -> list[str | ActionSpec]:
    return [
        # database-only handlers: a worker may batch them (share_transaction)
        ActionSpec("TEST_NOOP", share_transaction=True),
        ActionSpec("TEST_RECORD", share_transaction=True),
        "TEST_FAIL",
        "TEST_COMMIT",
        "TEST_ARTIFACT",
        "TEST_ENQUEUE",
        "TEST_BAD_RESULT",
        "TEST_SAVEPOINT",
        ActionSpec(
            "TEST_STRICT",
            description="refuses any payload but {n: integer}",
            payload_schema={
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "required": ["n"],
                "additionalProperties": False,
            },
            max_attempts=4,
        ),
        ActionSpec("TEST_SLOW", description="sleeps past its 1 s timeout", timeout=1.0),
        "TEST_SNOOZE",
        "TEST_HOLD",
        ActionSpec("TEST_SLOT", description="returns the schedule slot its context gives"),
        ActionSpec("TEST_SQL", share_transaction=True),
        ActionSpec("TEST_BLOCK", description="runs until the test releases it"),
        *(ActionSpec(name, **limits) for name, limits in LIMITED_TYPES.items()),
    ]


@hookimpl
def aol_schema() -> MetaData:
    return metadata


def _record(session: Session, context: ActionContext, tag: str | None, proof: bool,
            orm: bool = False) -> None:
    if orm:  # left pending in the session, unflushed
        session.add(Run(action_id=context.action_id, attempt=context.attempt, tag=tag,
                        worker=context.worker, pid=os.getpid(), proof=int(proof)))
        return
    session.execute(
        insert(runs).values(
            action_id=context.action_id, attempt=context.attempt, tag=tag,
            worker=context.worker, pid=os.getpid(), proof=int(proof),
        )
    )
    session.flush()


@hookimpl
def handle_action(
    action_type: str,
    session: Session,
    payload: dict[str, Any],
    proof_mode: bool,
    context: ActionContext,
) -> Any:
    if action_type == "TEST_NOOP":
        return None
    if action_type == "TEST_RECORD":
        if payload.get("read_first"):
            session.execute(select(func.count()).select_from(runs)).scalar()
            time.sleep(float(payload.get("think", 0)))
        _record(session, context, payload.get("tag"), proof_mode, bool(payload.get("orm")))
        time.sleep(float(payload.get("sleep", 0)))
        return {"key": payload["idempotency_key"], "attempt": context.attempt}
    if action_type == "TEST_FAIL":
        if payload.get("write_first"):
            _record(session, context, "before-failure", proof_mode)
        context.log("INFO", "about to fail")
        if context.attempt <= int(payload.get("times", 1_000_000)):
            mode = payload.get("mode", "error")
            if mode == "permanent":
                raise PermanentError("bad input, retrying cannot help")
            if mode == "retryable":
                raise RetryableError("try later", delay=payload.get("delay"))
            raise RuntimeError(f"boom on attempt {context.attempt}")
        return {"recovered_on": context.attempt}
    if action_type == "TEST_COMMIT":
        _record(session, context, "committed-by-handler", proof_mode)
        if payload.get("rollback"):
            session.rollback()
        else:
            session.commit()
        return None
    if action_type == "TEST_ARTIFACT":
        content = payload.get("text", "proof")
        if payload.get("per_attempt"):
            content += f" (attempt {context.attempt})"
        ref = context.record_artifact("proof.txt", content)
        if context.attempt <= int(payload.get("fail_times", 0)):
            raise RuntimeError("failing after recording the artifact")
        return {"uri": ref.uri, "sha256": ref.sha256, "proof_mode": proof_mode}
    if action_type == "TEST_SAVEPOINT":
        try:
            with session.begin_nested():
                _record(session, context, "undone", proof_mode)
                raise ValueError("undo this part")
        except ValueError:
            pass
        _record(session, context, "kept", proof_mode)
        return None
    if action_type == "TEST_ENQUEUE":
        enqueue(session, "TEST_NOOP", {}, idempotency_key=payload["child_key"])
        if payload.get("then_fail"):
            raise RuntimeError("failing after enqueuing the child")
        return None
    if action_type == "TEST_SQL":
        _send_sql(session, context, payload)
        if payload.get("expunge_all"):
            session.expunge_all()
        if payload.get("then_fail"):
            raise RuntimeError("failing after the statements")
        return None
    if action_type == "TEST_BLOCK":  # writes after the wait: SQLite's lock stays free
        BLOCKED.set()
        deadline = time.monotonic() + float(payload.get("timeout", 60))
        while not RELEASE.wait(0.01) and time.monotonic() < deadline:
            if context.cancelled:
                SAW_CANCEL.set()
                break
        _record(session, context, "blocked", proof_mode)
        return None
    if action_type == "TEST_SLOT":
        return {"slot": None if context.slot is None else context.slot.isoformat()}
    if action_type == "TEST_BAD_RESULT":
        return {"not json": object()}
    if action_type == "TEST_STRICT":
        return {"n": payload["n"]}
    if action_type == "TEST_SLOW":
        _record(session, context, "slow", proof_mode)
        time.sleep(float(payload.get("sleep", 3)))
        return None
    if action_type == "TEST_SNOOZE":
        _record(session, context, "before-snooze", proof_mode)
        if context.attempt <= int(payload.get("fail_times", 0)):
            raise RuntimeError(f"boom on attempt {context.attempt}")
        raise Snooze(timedelta(seconds=float(payload.get("seconds", 3600))),
                     payload.get("reason", ""))
    if action_type == "TEST_HOLD":
        _record(session, context, "before-hold", proof_mode)
        time.sleep(float(payload.get("sleep", 0)))
        if context.attempt <= int(payload.get("times", 1_000_000)):
            raise Hold(payload.get("reason", "outcome unknown"))
        return {"attempt": context.attempt}
    if action_type in LIMITED_TYPES:
        began = time.time()
        time.sleep(float(payload.get("sleep", 0)))
        session.execute(insert(spans).values(action_id=context.action_id,
                                             account=payload.get("account"), began=began,
                                             ended=time.time()))
        return None
    raise AssertionError(f"routed an undeclared type {action_type}")


def _send_sql(session: Session, context: ActionContext, payload: dict[str, Any]) -> None:
    """Each of ``payload["sql"]`` with ``{action_id}`` filled in. With ``udf``, SQLite first
    learns ``aol_test_write(action_id)``, a function that inserts a run row itself."""
    if payload.get("udf"):
        raw = session.connection().connection.driver_connection
        assert raw is not None

        def write(action_id: int) -> int:
            raw.execute("INSERT INTO test_actions_runs (action_id, attempt, tag) "
                        "VALUES (?, ?, 'udf')", (action_id, context.attempt))
            return 1

        raw.create_function("aol_test_write", 1, write)
    for statement in payload.get("sql", []):
        session.execute(text(statement.replace("{action_id}", str(context.action_id))))
