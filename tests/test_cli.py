"""The ``aol`` command: names, JSON shapes, exit codes and one-line errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from aol_core.cli import main
from aol_core.testing import ActionHarness
from helpers import aol


class CLI:
    def __init__(self, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.db_url, self.capsys = db_url, capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            code = main(["--db", self.db_url, *args])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> Any:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]) -> CLI:
    return CLI(db_url, capsys)


def test_enqueue_json_reports_id_status_and_created(cli: CLI) -> None:
    first = cli.json("enqueue", "TEST_NOOP", "--payload", '{"a": 1}', "--key", "k")
    again = cli.json("enqueue", "TEST_NOOP", "--payload", '{"a": 1}', "--key", "k")
    assert first["status"] == "PENDING" and first["created"] is True
    assert again["id"] == first["id"] and again["created"] is False


def test_enqueue_accepts_relative_not_before(cli: CLI) -> None:
    done = cli.json("enqueue", "TEST_NOOP", "--not-before", "+5m")
    (shown,) = cli.json("actions", "list")
    assert shown["id"] == done["id"] and shown["not_before"] > shown["created_at"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--payload", "{not json"], "argument --payload: the payload is not valid JSON"),
        (["--payload", "[1]"], "argument --payload: the payload is a JSON array, not an object"),
        (["--not-before", "tomorrow"], "argument --not-before: not a time: 'tomorrow'"),
        (["--max-attempts", "0"], "argument --max-attempts: must be at least 1"),
    ],
)
def test_malformed_enqueue_arguments_are_usage_errors(cli: CLI, args: list[str],
                                                      message: str) -> None:
    code, _, err = cli("enqueue", "TEST_NOOP", *args)
    assert code == 2
    assert message in err.strip().splitlines()[-1]
    assert cli.json("actions", "list") == []


def test_an_unknown_action_type_is_one_line_and_exit_1(cli: CLI) -> None:
    code, out, err = cli("enqueue", "NOPE")
    assert (code, out) == (1, "")
    (line,) = err.strip().splitlines()
    assert line.startswith("aol: error: unknown action type NOPE; known types: ")


def test_a_conflicting_key_is_one_line_and_loses_nothing(cli: CLI) -> None:
    cli("enqueue", "TEST_NOOP", "--payload", '{"a": 1}', "--key", "k")
    code, _, err = cli("enqueue", "TEST_NOOP", "--payload", '{"a": 2}', "--key", "k")
    assert code == 1 and "idempotency key 'k'" in err
    (kept,) = cli.json("actions", "list")
    assert kept["payload"] == {"a": 1}


def test_actions_list_filters_by_status_and_type(cli: CLI, harness: ActionHarness) -> None:
    harness.run("TEST_FAIL", {"mode": "permanent"})
    harness.enqueue("TEST_NOOP", {})
    failed = cli.json("actions", "list", "--status", "failed")
    assert [a["action_type"] for a in failed] == ["TEST_FAIL"]
    assert [a["status"] for a in cli.json("actions", "list", "--type", "TEST_NOOP")] == [
        "PENDING"]
    assert len(cli.json("actions", "list", "--limit", "1")) == 1


def test_actions_list_json_uses_the_action_field_names(cli: CLI) -> None:
    cli("enqueue", "TEST_NOOP", "--key", "k")
    (action,) = cli.json("actions", "list")
    assert {"id", "action_type", "status", "attempts", "idempotency_key", "payload", "result",
            "last_error", "created_at", "updated_at", "not_before"} <= action.keys()


def test_actions_show_includes_logs_and_artifacts(cli: CLI, harness: ActionHarness) -> None:
    action = harness.run("TEST_ARTIFACT", {"text": "hi"})
    shown = cli.json("actions", "show", str(action.id))
    assert shown["status"] == "SUCCESS"
    assert [a["name"] for a in shown["artifacts"]] == ["proof.txt"]
    assert any(entry["artifact_ref"] for entry in shown["logs"])
    code, out, _ = cli("actions", "artifact", str(action.id), "proof.txt")
    assert (code, out) == (0, "hi")


def test_actions_show_of_a_missing_id_is_exit_1(cli: CLI) -> None:
    code, _, err = cli("actions", "show", "999")
    assert code == 1 and err.strip() == "aol: error: no action with id 999"


def test_actions_retry_makes_a_dlq_action_due_again(cli: CLI, harness: ActionHarness) -> None:
    action = harness.run("TEST_FAIL", {}, max_attempts=1)
    assert action.status == "DLQ"
    code, _, _ = cli("actions", "retry", str(action.id))
    shown = cli.json("actions", "show", str(action.id))
    assert (code, shown["status"], shown["max_attempts"]) == (0, "RETRY", 2)


def test_actions_retry_refuses_a_pending_action(cli: CLI) -> None:
    done = cli.json("enqueue", "TEST_NOOP")
    code, _, err = cli("actions", "retry", str(done["id"]))
    assert code == 1 and "only FAILED, DLQ or CANCELLED" in err


def test_actions_cancel_stops_a_pending_action_from_running(cli: CLI,
                                                            harness: ActionHarness) -> None:
    done = cli.json("enqueue", "TEST_NOOP")
    assert cli("actions", "cancel", str(done["id"]))[0] == 0
    assert harness.run_due() == []
    assert cli.json("actions", "show", str(done["id"]))["status"] == "CANCELLED"


def test_control_switches_show_in_status(cli: CLI) -> None:
    assert cli.json("control", "status") == {"paused": False, "killed": False,
                                             "proof_mode": False}
    for args in (["pause"], ["kill"], ["proof", "on"]):
        assert cli("control", *args)[0] == 0
    assert cli.json("control", "status") == {"paused": True, "killed": True, "proof_mode": True}
    for args in (["resume"], ["revive"], ["proof", "off"]):
        assert cli("control", *args)[0] == 0
    assert cli.json("control", "status") == {"paused": False, "killed": False,
                                             "proof_mode": False}


def test_health_without_a_worker_is_unhealthy_naming_the_check(cli: CLI) -> None:
    cli("enqueue", "TEST_NOOP")
    code, out, _ = cli("health")
    assert code == 1
    assert "FAIL  a live worker" in out
    assert "1 TEST_NOOP action(s) wait but no live worker runs TEST_NOOP" in out


def test_health_masks_the_database_password(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--db", "postgresql://aol:s3cret@127.0.0.1:1/nowhere", "health", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["database"] == "postgresql+psycopg://aol:***@127.0.0.1:1/nowhere"
    assert report["checks"][0]["name"] == "database reachable"
    assert report["checks"][0]["ok"] is False


def test_commands_on_an_unmigrated_database_say_to_upgrade(tmp_path: Any,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    (tmp_path / "empty.db").touch()
    code = main(["--db", f"sqlite:///{tmp_path / 'empty.db'}", "actions", "list"])
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "aol: error: the database has no AOL tables; run: aol db upgrade")


def test_an_unsupported_database_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--db", "mysql://x@localhost/db", "actions", "list"]) == 1
    assert "unsupported database 'mysql'" in capsys.readouterr().err


def test_db_upgrade_is_safe_to_repeat(cli: CLI) -> None:
    code, out, _ = cli("db", "upgrade")
    assert code == 0 and "schema is current" in out


def test_aol_database_url_is_read_from_the_environment(engine: Engine, db_url: str) -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "aol_core.cli", "control", "status",
                             "--json"], capture_output=True, text=True,
                            env={**os.environ, "AOL_DATABASE_URL": db_url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["killed"] is False


def test_a_bad_setting_in_the_environment_is_named(db_url: str) -> None:
    result = aol("actions", "list", db_url=db_url, env={"AOL_BATCH_SIZE": "many"})
    assert result.returncode == 1
    assert result.stderr.strip() == "aol: error: AOL_BATCH_SIZE must be a number, not 'many'"


def test_cancel_stops_an_action_a_worker_is_running(cli: CLI, harness: ActionHarness) -> None:
    from aol_core.drivers import driver_for
    from aol_core.timeutil import utcnow

    done = cli.json("enqueue", "TEST_NOOP")
    driver_for(harness.engine).claim(harness.engine, worker="w", action_types=["TEST_NOOP"],
                                     limit=1, lease_seconds=30, now=utcnow())
    code, _, err = cli("actions", "cancel", str(done["id"]))
    assert code == 0, err
    shown = cli.json("actions", "show", str(done["id"]))
    assert (shown["status"], shown["lease_owner"]) == ("CANCELLED", None)


def test_cancel_refuses_a_finished_action(cli: CLI) -> None:
    done = cli.json("enqueue", "TEST_NOOP")
    assert cli("actions", "cancel", str(done["id"]))[0] == 0
    code, _, err = cli("actions", "cancel", str(done["id"]))
    assert code == 1 and "is CANCELLED; only PENDING, RETRY or RUNNING can be cancelled" in err


def test_the_seed_mark_failed_fails_an_unfinished_action_once(harness: ActionHarness) -> None:
    from aol_core import ActionQueue
    from aol_core.errors import InvalidTransition

    action_id = harness.enqueue("TEST_NOOP", {})
    with harness.session() as session:
        ActionQueue.mark_failed(session, action_id, "operator says no")
    assert (harness.action(action_id).status, harness.action(action_id).last_error) == (
        "FAILED", "operator says no")
    with pytest.raises(InvalidTransition), harness.session() as session:
        ActionQueue.mark_failed(session, action_id, "again")
