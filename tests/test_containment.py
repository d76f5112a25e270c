"""A handler's writes are contained, whatever SQL it sends: every statement runs in its
action's transaction, so a handler that raises leaves nothing behind, and one that returns
commits everything with its SUCCESS (TEST_SQL sends the payload's statements)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from aol_core.models import Status
from aol_core.testing import ActionHarness
from helpers import claim_all

INSERT = "INSERT INTO test_actions_runs (action_id, attempt) VALUES ({action_id}, 1)"

#: statements that write although their text does not start like a write
HIDDEN_WRITES = {
    "comment": [f"/* c */ {INSERT}"],
    "line comment": [f"-- c\n{INSERT}"],
    "with": ["WITH a AS (SELECT {action_id} AS id) "
             "INSERT INTO test_actions_runs (action_id, attempt) SELECT id, 1 FROM a"],
}
SQLITE_WRITES = {
    "function": ["SELECT aol_test_write({action_id})"],
}
POSTGRESQL_WRITES = {
    "do": ["DO $$ BEGIN " + INSERT + "; END $$"],
    "function": ["SELECT aol_test_insert({action_id})"],
    "call": ["CALL aol_test_proc({action_id})"],
}
POSTGRESQL_ROUTINES = (
    "CREATE FUNCTION aol_test_insert(a bigint) RETURNS integer LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO test_actions_runs (action_id, attempt) VALUES (a, 1); RETURN 1; END $$",
    "CREATE PROCEDURE aol_test_proc(a bigint) LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO test_actions_runs (action_id, attempt) VALUES (a, 1); END $$",
)


def _hostile(engine: Engine) -> dict[str, list[str]]:
    if engine.dialect.name == "sqlite":
        return {**HIDDEN_WRITES, **SQLITE_WRITES}
    with engine.begin() as conn:
        for routine in POSTGRESQL_ROUTINES:
            conn.execute(text(routine))
    return {**HIDDEN_WRITES, **POSTGRESQL_WRITES}


def _runs(harness: ActionHarness, action_id: int) -> int:
    with harness.session() as session:
        return session.scalar(text("SELECT count(*) FROM test_actions_runs WHERE action_id = :a"),
                              {"a": action_id}) or 0


def _payload(sql: list[str], then_fail: bool) -> dict[str, object]:
    return {"sql": sql, "udf": sql is SQLITE_WRITES["function"], "then_fail": then_fail}


def test_hidden_writes_roll_back_when_the_handler_raises(harness: ActionHarness) -> None:
    for name, sql in _hostile(harness.engine).items():
        action = harness.run("TEST_SQL", _payload(sql, then_fail=True))
        assert action.status == Status.RETRY, name
        assert _runs(harness, action.id) == 0, f"{name}: a write outlived the rollback"


def test_hidden_writes_commit_with_the_handlers_success(harness: ActionHarness) -> None:
    for name, sql in _hostile(harness.engine).items():
        action = harness.run("TEST_SQL", _payload(sql, then_fail=False))
        assert action.status == Status.SUCCESS, name
        assert _runs(harness, action.id) == 1, name


def test_a_pragma_that_writes_rolls_back_when_the_handler_raises(
    harness: ActionHarness,
) -> None:
    if harness.engine.dialect.name != "sqlite":
        pytest.skip("PRAGMA is SQLite's")
    action = harness.run("TEST_SQL", {"sql": ["PRAGMA user_version=7"], "then_fail": True})
    assert action.status == Status.RETRY
    with harness.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA user_version").scalar() == 0


def test_hidden_writes_of_a_failing_handler_in_a_batch_roll_back_alone(
    harness: ActionHarness,
) -> None:
    hostile = _hostile(harness.engine)
    for sql in hostile.values():
        harness.enqueue("TEST_SQL", _payload(sql, then_fail=True))
    kept = harness.enqueue("TEST_RECORD", {})
    claims = claim_all(harness)
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert outcomes.pop(kept) == Status.SUCCESS
    assert set(outcomes.values()) == {Status.RETRY}
    assert [_runs(harness, action_id) for action_id in outcomes] == [0] * len(hostile)
    assert _runs(harness, kept) == 1


def test_a_read_outside_a_transaction_cannot_write(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL runs every statement in the connection's transaction")
    with engine.connect() as conn:
        conn.exec_driver_sql("/* hidden */ INSERT INTO test_actions_runs (action_id, attempt) "
                             "VALUES (1, 1)")
        conn.rollback()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM test_actions_runs").scalar() == 0


def test_a_script_that_would_commit_the_open_transaction_is_refused(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("executescript is pysqlite's")
    import sqlite3

    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO test_actions_runs (action_id, attempt) VALUES (1, 1)")
        raw = conn.connection.driver_connection
        assert raw is not None
        with pytest.raises(sqlite3.NotSupportedError, match="one at a time"):
            raw.executescript("SELECT 1;")
        conn.rollback()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM test_actions_runs").scalar() == 0
