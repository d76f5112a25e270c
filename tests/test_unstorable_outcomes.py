"""What a handler returns, logs or raises never makes its outcome unstorable: a result AOL
cannot store fails the action once, permanently, saying why; log lines and error text are
stored with NULs escaped and their length capped; SQL parameter values stay out of errors.

The handlers live in a throwaway plugin distribution (see test_plugins.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_plugins import install

from aol_core import limits
from aol_core.cli import main
from aol_core.config import Settings
from aol_core.models import Action
from aol_core.plugins import load_plugins
from aol_core.testing import ActionHarness

HOSTILE = '''
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from aol_core import PermanentError, hookimpl

metadata = MetaData()
uniques = Table("hostile_uniques", metadata, Column("id", Integer, primary_key=True),
                Column("value", String(100), unique=True))

class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")

def deep(levels):
    value = []
    for _ in range(levels - 1):
        value = [value]
    return value

BEHAVIOURS = {
    "nan_result": lambda c, s, p: {"ratio": float("nan")},
    "infinite_result": lambda c, s, p: [1, {"x": float("inf")}],
    "nul_result": lambda c, s, p: {"text": "a\\x00b"},
    "big_result": lambda c, s, p: {"text": "x" * 2000},
    "deep_result": lambda c, s, p: deep(40),
}

@hookimpl
def aol_register_actions():
    return ["HOSTILE"]

@hookimpl
def aol_schema():
    return metadata

@hookimpl
def handle_action(session, payload, context):
    make = payload["make"]
    if make in BEHAVIOURS:
        return BEHAVIOURS[make](context, session, payload)
    if make == "nul_log":
        context.log("INFO", "before\\x00after")
    if make == "huge_log":
        context.log("INFO", "y" * 100_000)
    if make == "nul_error":
        raise PermanentError("bad\\x00input")
    if make == "unprintable_error":
        raise Unprintable()
    if make == "big_artifact":
        context.record_artifact("big.bin", b"z" * 2000)
    if make == "duplicate_secret":
        for _ in range(2):
            session.execute(insert(uniques).values(value=payload["secret"]))
    return {"ok": True}
'''


@pytest.fixture
def hostile(tmp_site: Path, db_url: str) -> Iterator[ActionHarness]:
    install(tmp_site, "aol-hostile", "1.0", "aol_hostile", HOSTILE)
    settings = Settings(database_url=db_url, retry_base_seconds=0, plugins=("aol-hostile",),
                        max_payload_bytes=1000, max_artifact_bytes=1000)
    harness = ActionHarness(db_url, registry=load_plugins(settings), settings=settings)
    yield harness
    harness.close()


def run(harness: ActionHarness, make: str, **payload: str) -> Action:
    return harness.run("HOSTILE", {"make": make, **payload}, max_attempts=5)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        ("nan_result", "handler result contains NaN or Infinity"),
        ("infinite_result", "handler result contains NaN or Infinity"),
        ("nul_result", "handler result contains a NUL character"),
        ("big_result", "over the limit of 1000 (AOL_MAX_PAYLOAD_BYTES)"),
        ("deep_result", "over the limit of 32 (AOL_MAX_PAYLOAD_DEPTH)"),
    ],
)
def test_a_result_aol_cannot_store_fails_once_permanently_saying_why(
        hostile: ActionHarness, make: str, reason: str) -> None:
    action = run(hostile, make)
    assert (action.status, action.attempts) == ("FAILED", 1)
    assert reason in (action.last_error or "")
    assert "AOL cannot store it" in (action.last_error or "")


def test_a_log_line_with_a_nul_is_stored_escaped(hostile: ActionHarness) -> None:
    action = run(hostile, "nul_log")
    assert action.status == "SUCCESS"
    assert "before\\x00after" in [log.message for log in hostile.logs(action.id)]


def test_a_huge_log_line_is_cut_with_a_note(hostile: ActionHarness) -> None:
    action = run(hostile, "huge_log")
    (line,) = [log.message for log in hostile.logs(action.id) if log.message.startswith("y")]
    assert line == "y" * limits.MAX_LOG_LINE_CHARS + (
        f"… [{100_000 - limits.MAX_LOG_LINE_CHARS} more characters cut]")


def test_an_error_with_a_nul_is_recorded_once_escaped(hostile: ActionHarness) -> None:
    action = run(hostile, "nul_error")
    assert (action.status, action.attempts) == ("FAILED", 1)
    assert action.last_error == "PermanentError: bad\\x00input"


def test_an_exception_that_cannot_be_printed_is_still_recorded(hostile: ActionHarness) -> None:
    action = run(hostile, "unprintable_error")
    assert (action.status, action.attempts) == ("RETRY", 1)
    assert action.last_error == "Unprintable: <Unprintable whose str() failed>"


def test_an_artifact_over_the_limit_fails_the_action_naming_the_limit(
        hostile: ActionHarness) -> None:
    action = run(hostile, "big_artifact")
    assert (action.status, action.attempts) == ("FAILED", 1)
    assert ("artifact 'big.bin' is 2000 bytes, over the limit of 1000 "
            "(AOL_MAX_ARTIFACT_BYTES)") in (action.last_error or "")
    assert hostile.artifacts(action.id) == []


def test_sql_parameter_values_stay_out_of_errors_logs_and_the_cli(
        hostile: ActionHarness, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    action = run(hostile, "duplicate_secret", secret="hunter2-payload-secret")
    assert action.status == "RETRY"
    assert "IntegrityError" in (action.last_error or "")
    capsys.readouterr()
    assert main(["--db", db_url, "actions", "show", str(action.id), "--json"]) == 0
    shown = capsys.readouterr().out.replace('"secret": "hunter2-payload-secret"', "")
    stored = [action.last_error or "", *(log.message for log in hostile.logs(action.id))]
    for text in [*stored, shown]:
        assert "hunter2" not in text
