"""Handlers whose behaviour the payload dictates, so tests can make any outcome happen.

Every run of TEST_RECORD (and of TEST_FAIL with ``write_first``) inserts a row into
``test_actions_runs`` in the handler's transaction: committed rows prove exactly-once
effects, missing rows prove rollbacks.
"""

from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

from aol_core import (
    ActionContext,
    ActionSpec,
    PermanentError,
    RetryableError,
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
    ]


@hookimpl
def aol_schema() -> MetaData:
    return metadata


def _record(session: Session, context: ActionContext, tag: str | None, proof: bool) -> None:
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
        _record(session, context, payload.get("tag"), proof_mode)
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
        ref = context.record_artifact("proof.txt", payload.get("text", "proof"))
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
    if action_type == "TEST_BAD_RESULT":
        return {"not json": object()}
    if action_type == "TEST_STRICT":
        return {"n": payload["n"]}
    if action_type == "TEST_SLOW":
        _record(session, context, "slow", proof_mode)
        time.sleep(float(payload.get("sleep", 3)))
        return None
    raise AssertionError(f"routed an undeclared type {action_type}")
