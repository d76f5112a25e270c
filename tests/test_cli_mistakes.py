"""User mistakes and hostile surroundings: the ``aol`` command answers in one line on stderr,
exits 1 (or 2 for usage), never prints a traceback, never creates a database by reading one,
goes quiet when its reader goes away, and never prints a password."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from test_plugins import install

from aol_core import schema
from aol_core.cli import main
from aol_core.config import Settings
from aol_core.db import create_engine, mask_url
from aol_core.plugins import PluginRegistry, forget_installed
from aol_core.testing import ActionHarness
from aol_core.worker import Worker, WorkerOptions


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def cli(engine: Engine, db_url: str, capsys: pytest.CaptureFixture[str]) -> Any:
    return lambda *args: run(capsys, "--db", db_url, *args)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", "TEST_NOOP", "--payload", '{"n": NaN}'], "NaN is not JSON"),
        (["enqueue", "TEST_NOOP", "--payload", '{"n": -Infinity}'], "-Infinity is not JSON"),
        (["enqueue", "TEST_NOOP", "--payload", "[" * 100_000], "nested too deep to decode"),
        (["enqueue", "TEST_NOOP", "--priority", "2147483648"], "must be at most 2147483647"),
        (["enqueue", "TEST_NOOP", "--priority", "-2147483649"], "must be at least -2147483648"),
        (["enqueue", "TEST_NOOP", "--max-attempts", "2147483648"], "must be at most"),
        (["enqueue", "TEST_NOOP", "--not-before", "+99999999999d"], "--not-before"),
        (["actions", "show", str(2**63)], "must be at most 9223372036854775807"),
        (["actions", "cancel", "1" * 5000], "expected a whole number"),
        (["actions", "list", "--limit", "0"], "must be at least 1"),
        (["worker", "--lease-seconds", "nan"], "expected a number of seconds"),
        (["prune", "--older-than", "99999999999999d"], "--older-than"),
        (["prune", "--older-than", "999999999d"], "must be at most 1000000000s"),
        (["actions", "list", "--type", "\udcff"], "not valid UTF-8"),
        (["actions", "frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_a_usage_mistake_is_one_line_and_exit_2(cli: Any, args: list[str], message: str) -> None:
    code, _, err = cli(*args)
    assert code == 2
    assert message in one_line(err)


def test_an_action_id_the_database_cannot_hold_is_refused_before_asking(cli: Any) -> None:
    code, _, err = cli("actions", "show", str(2**63 - 1))
    assert (code, one_line(err)) == (1, f"aol: error: no action with id {2**63 - 1}")


def test_an_unexpected_error_is_one_line_with_the_way_to_the_traceback(
        cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr("aol_core.queue.load_action", broken)
    code, _, err = cli("actions", "show", "1")
    assert code == 1
    assert one_line(err) == ("aol: internal error: ZeroDivisionError: a defect (the traceback: "
                             "--log-level DEBUG or AOL_TRACEBACK=1)")
    monkeypatch.setenv("AOL_TRACEBACK", "1")
    capsys.readouterr()
    assert main(["--db", db_url, "actions", "show", "1"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


# --- a reader that goes away -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["health", "--json"], ["actions", "list", "--json"], ["actions", "show", "1"],
             ["actions", "show", "1", "--json"]])
def test_a_closed_pipe_ends_the_command_quietly(harness: ActionHarness, db_url: str,
                                               args: list[str]) -> None:
    for n in range(30):
        harness.enqueue("TEST_NOOP", {"n": n, "text": "x" * 500})
    child = subprocess.Popen([sys.executable, "-m", "aol_core.cli", "--db", db_url, *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the command writes a byte
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 1  # as Python does on EPIPE (signal docs)
    assert err == ""


# --- reading never creates a database --------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["actions", "list"], ["actions", "show", "1", "--json"], ["actions", "cancel", "1"],
             ["health"], ["health", "--json"], ["control", "status"], ["control", "pause"],
             ["enqueue", "TEST_NOOP"], ["prune"], ["worker", "--burst"]])
def test_a_missing_sqlite_file_is_named_and_not_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    missing = tmp_path / "typo.db"
    code, _, err = run(capsys, "--db", f"sqlite:///{missing}", *args)
    assert code == 1
    assert one_line(err) == (f"aol: error: database file {missing} does not exist; "
                             "create it with aol db upgrade")
    assert list(tmp_path.iterdir()) == []


def test_db_upgrade_still_creates_the_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--db", f"sqlite:///{tmp_path / 'new.db'}", "db", "upgrade")[0] == 0
    assert (tmp_path / "new.db").exists()


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://aol:s3cret@db.example/queue",
        "postgresql://aol@db.example/queue?password=s3cret",
        "postgresql://aol@db.example/queue?sslmode=require&sslpassword=s3cret",
        "postgresql:///queue?host=/run/pg&PASSWORD=s3cret&user=aol",
    ],
)
def test_every_credential_form_is_masked(url: str) -> None:
    masked = mask_url(url)
    assert "s3cret" not in masked
    assert "***" in masked


def test_health_masks_a_password_given_as_a_query_parameter(
        capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://aol@127.0.0.1:1/nowhere?password=s3cret&connect_timeout=2"
    code, out, err = run(capsys, "--db", url, "health", "--json")
    assert code == 1
    assert "s3cret" not in out + err
    assert json.loads(out)["database"].endswith("nowhere?connect_timeout=2&password=***")


def test_the_test_kit_skip_reason_masks_the_password(tmp_path: Path) -> None:
    test = tmp_path / "test_skip.py"
    test.write_text("def test_it(aol_postgres_url):\n    pass\n")
    env = {**os.environ, "AOL_TEST_POSTGRES_URL":
           "postgresql://aol:s3cret@127.0.0.1:1/x?sslpassword=s3cret2&connect_timeout=2"}
    env.pop("AOL_REQUIRE_POSTGRES", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider",
                           str(test)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    assert "1 skipped" in done.stdout, done.stdout
    assert "PostgreSQL unreachable at postgresql://aol:***@127.0.0.1:1/x?" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


# --- enqueue when a plugin is broken ---------------------------------------------------------


@pytest.fixture
def broken_plugin(tmp_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_site, "acme-broken", "0.1", "acme_broken", "import no_such_module_here\n")
    monkeypatch.setenv("AOL_PLUGINS", "aol-test-actions,acme-broken")
    forget_installed()


def test_enqueue_refuses_a_type_a_broken_plugin_may_own(broken_plugin: None, cli: Any) -> None:
    code, _, err = cli("enqueue", "ACME_MAIL", "--payload", '{"to": 1}')
    assert code == 1
    line = one_line(err)
    assert "action type ACME_MAIL is declared by no plugin that loaded" in line
    assert ("plugin acme-broken 0.1 (acme_broken = acme_broken) failed to import "
            "(ModuleNotFoundError: No module named 'no_such_module_here')") in line
    assert "--force (aol enqueue) or force=True (Python)" in line


def test_forced_enqueue_warns_naming_the_broken_plugin(
        broken_plugin: None, cli: Any, caplog: pytest.LogCaptureFixture) -> None:
    code, out, _ = cli("enqueue", "ACME_MAIL", "--force", "--json")
    assert code == 0 and json.loads(out)["created"] is True
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "aol.queue"]
    assert warning.startswith("enqueued ACME_MAIL unvalidated although plugin acme-broken 0.1")


def test_types_of_plugins_that_loaded_still_enqueue_beside_a_broken_one(
        broken_plugin: None, cli: Any) -> None:
    assert cli("enqueue", "TEST_NOOP")[0] == 0


def test_an_unknown_type_names_both_ways_to_force_it(cli: Any) -> None:
    code, _, err = cli("enqueue", "NO_SUCH_TYPE")
    assert code == 1
    assert one_line(err).endswith("(enqueue it anyway with --force (aol enqueue) or force=True "
                                  "(Python))")


def test_the_worker_start_up_line_masks_a_password_query_parameter(
        aol_postgres_url: str, registry: PluginRegistry,
        caplog: pytest.LogCaptureFixture) -> None:
    url = f"{aol_postgres_url}&password=s3cret"  # the test server trusts: it is ignored
    engine = create_engine(url)
    schema.upgrade(engine, registry)
    try:
        with caplog.at_level(logging.INFO, logger="aol.worker"):
            Worker(engine, registry, Settings(database_url=url),
                   WorkerOptions(name="masked", burst=True)).run()
    finally:
        engine.dispose()
    (started,) = [r.getMessage() for r in caplog.records if "started on" in r.getMessage()]
    assert "password=***" in started
    assert "s3cret" not in caplog.text
