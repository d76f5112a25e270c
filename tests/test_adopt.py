"""``aol db adopt`` on a database of the original AOL (built from its column lists by
``aol_core.testing.original``), read back through ``aol_core.compat``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from aol_core import adopt, schema
from aol_core.compat import ActionQueue, AOLAction, AOLControlFlags, AOLDaemon, AOLExecutionLog
from aol_core.config import Settings
from aol_core.db import create_engine
from aol_core.errors import ForeignTables
from aol_core.plugins import PluginRegistry
from aol_core.testing import original
from helpers import aol

CREATED = datetime(2025, 12, 16, 9, 0)  # naive, as the original stored every time
FAR = datetime(2099, 1, 1, 12, 0)

#: id: (type, payload, status, not_before, attempts, last_error)
ACTIONS = {
    1: ("TEST_NOOP", None, "PENDING", None, 0, None),
    2: ("TEST_RECORD", {"tag": "was ready"}, "READY", CREATED, 0, None),
    3: ("TEST_NOOP", {}, "RETRY", CREATED, 1, "Action execution error: timeout"),
    4: ("TEST_NOOP", {}, "SUCCESS", None, 0, None),
    5: ("POST_SOCIAL", {"social_platform": "twitter"}, "DLQ", None, 3, "real mode unbuilt"),
    6: ("TEST_NOOP", {}, "PENDING", FAR, 0, None),
}


@pytest.fixture
def original_engine(aol_database_url: str) -> Iterator[Engine]:
    """A database as the original application left it."""
    engine = create_engine(aol_database_url)
    original.create_original_schema(engine)
    with engine.begin() as conn:
        conn.execute(insert(original.aol_actions), [
            {"id": action_id, "idempotency_key": f"key-{action_id}", "action_type": kind,
             "payload_json": None if payload is None else json.dumps(payload),
             "status": status, "not_before_utc": not_before, "attempts": attempts,
             "last_error": error, "created_at_utc": CREATED}
            for action_id, (kind, payload, status, not_before, attempts, error)
            in ACTIONS.items()
        ])
        conn.execute(insert(original.aol_execution_logs), [
            {"action_id": 4, "ts_utc": CREATED, "level": "SUCCESS", "message": "posted"},
            {"action_id": 5, "ts_utc": CREATED, "level": "ERROR", "message": "real mode",
             "artifact_ref": "/tmp/proof.txt", "artifact_sha256": "ab" * 32},
            {"action_id": 99, "ts_utc": CREATED, "level": "INFO", "message": "orphan"},
        ])
        conn.execute(insert(original.aol_control_flags),
                     {"paused": False, "killed": False, "proof_mode": True,
                      "updated_at_utc": CREATED})
        conn.execute(insert(original.aol_lease),
                     {"owner": "host:1", "acquired_at_utc": CREATED, "renewed_at_utc": CREATED,
                      "expires_at_utc": CREATED})
        conn.execute(insert(original.aol_tick_ledger),
                     {"started_at_utc": CREATED, "status": "SUCCESS", "actions_attempted": 0,
                      "actions_succeeded": 0})
    yield engine
    engine.dispose()


def take_over(engine: Engine, registry: PluginRegistry, *, dry_run: bool = False
              ) -> adopt.AdoptionReport:
    return adopt.adopt(engine, registry, Settings(), dry_run=dry_run)


def actions(engine: Engine) -> dict[int, AOLAction]:
    with sessionmaker(engine)() as session:
        return {a.id: a for a in session.scalars(select(AOLAction))}


def log_lines(engine: Engine) -> list[tuple[int, str, str]]:
    with sessionmaker(engine)() as session:
        return [(e.action_id, e.level, e.message) for e in
                session.scalars(select(AOLExecutionLog).order_by(AOLExecutionLog.id))]


def test_upgrade_refuses_the_original_tables_in_one_line_naming_adopt(
    original_engine: Engine,
) -> None:
    with pytest.raises(ForeignTables) as refused:
        schema.upgrade(original_engine)
    assert str(refused.value) == (
        "the database holds tables AOL did not create: aol_actions, aol_execution_logs; "
        "to take over a database of the original AOL, run: aol db adopt")


def test_adopt_moves_every_original_table_aside(
    original_engine: Engine, registry: PluginRegistry,
) -> None:
    report = take_over(original_engine, registry)
    moved = {table: f"legacy_{table}" for table in
             ("aol_actions", "aol_execution_logs", "aol_control_flags", "aol_lease",
              "aol_tick_ledger")}
    assert dict(report.moved) == moved
    tables = set(inspect(original_engine).get_table_names())
    assert set(moved.values()) <= tables
    assert schema.current_revision(original_engine) == schema.HEAD_REVISION


def test_adopt_copies_actions_with_their_keys_statuses_and_times(
    original_engine: Engine, registry: PluginRegistry,
) -> None:
    take_over(original_engine, registry)
    adopted = actions(original_engine)
    assert {i: (a.idempotency_key, a.status, a.attempts) for i, a in adopted.items()} == {
        1: ("key-1", "PENDING", 0), 2: ("key-2", "PENDING", 0), 3: ("key-3", "RETRY", 1),
        4: ("key-4", "SUCCESS", 0), 5: ("key-5", "DLQ", 3), 6: ("key-6", "PENDING", 0),
    }
    created = CREATED.replace(tzinfo=UTC)
    assert adopted[1].created_at_utc == created
    assert adopted[1].not_before_utc == created  # none: due since its creation
    assert adopted[6].not_before_utc == FAR.replace(tzinfo=UTC)
    assert (adopted[1].payload_json, json.loads(adopted[2].payload_json)) == (
        "{}", {"tag": "was ready"})
    assert adopted[3].last_error == "Action execution error: timeout"


def test_adopt_copies_logs_of_known_actions_and_the_control_flags(
    original_engine: Engine, registry: PluginRegistry,
) -> None:
    report = take_over(original_engine, registry)
    assert log_lines(original_engine) == [(4, "INFO", "posted"), (5, "ERROR", "real mode")]
    assert "2 execution log lines (1 of no known action left aside)" in " ".join(report.copied)
    with sessionmaker(original_engine)() as session:
        flags = session.scalars(select(AOLControlFlags)).one()
    assert (flags.paused, flags.killed, flags.proof_mode) == (False, False, True)


def test_adopt_keeps_an_artifact_ref_too_long_for_aol_whole_in_the_message(
    original_engine: Engine, registry: PluginRegistry,
) -> None:
    ref = "/var/proofs/" + "x" * 600  # the original's column was unbounded text
    with original_engine.begin() as conn:
        conn.execute(insert(original.aol_execution_logs),
                     {"action_id": 4, "ts_utc": CREATED, "level": "INFO", "message": "proof",
                      "artifact_ref": ref, "artifact_sha256": None})
    take_over(original_engine, registry)
    assert log_lines(original_engine)[-1] == (4, "INFO", f"proof [artifact_ref: {ref}]")


def test_adopting_again_finds_nothing_and_changes_nothing(
    original_engine: Engine, registry: PluginRegistry,
) -> None:
    take_over(original_engine, registry)
    before = {i: a.to_dict() for i, a in actions(original_engine).items()}
    again = take_over(original_engine, registry)
    assert not again.adopted
    assert again.lines() == ["nothing to adopt: no tables of the original AOL under their "
                             "own names"]
    assert {i: a.to_dict() for i, a in actions(original_engine).items()} == before


def test_a_dry_run_reports_what_adopting_does_and_changes_nothing(
    original_engine: Engine, registry: PluginRegistry,
) -> None:
    tables = set(inspect(original_engine).get_table_names())
    dry = take_over(original_engine, registry, dry_run=True)
    assert set(inspect(original_engine).get_table_names()) == tables
    done = take_over(original_engine, registry)
    assert (dry.moved, dry.copied) == (done.moved, done.copied)


def test_a_worker_runs_the_adopted_open_actions(
    original_engine: Engine, registry: PluginRegistry, aol_database_url: str,
) -> None:
    take_over(original_engine, registry)
    assert AOLDaemon(aol_database_url).run(max_ticks=1) == 0
    statuses = {i: a.status for i, a in actions(original_engine).items()}
    assert statuses == {1: "SUCCESS", 2: "SUCCESS", 3: "SUCCESS", 4: "SUCCESS", 5: "DLQ",
                        6: "PENDING"}
    with Session(original_engine) as session:
        assert ActionQueue.enqueue_action(session, "TEST_NOOP", {}).id == 7


def test_the_cli_adopts_and_reports_what_moved(original_engine: Engine) -> None:
    url = original_engine.url.render_as_string(hide_password=False)
    refused = aol("db", "upgrade", db_url=url)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert refused.stderr.strip().endswith("aol_execution_logs; to take over a database of the "
                                           "original AOL, run: aol db adopt")
    dry = aol("db", "adopt", "--dry-run", db_url=url)
    assert dry.returncode == 0 and "dry run, rolled back" in dry.stdout
    done = aol("db", "adopt", db_url=url)
    assert done.returncode == 0, done.stderr
    for output in (dry.stdout, done.stdout):
        assert "aol_actions -> legacy_aol_actions" in output
        assert "copied 6 actions (1 DLQ, 3 PENDING, 1 RETRY, 1 SUCCESS)" in output
    assert "nothing to adopt" in aol("db", "adopt", db_url=url).stdout
