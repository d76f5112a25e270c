"""A stored payload that cannot be decoded (written by hand or by an older version) fails its
own action, once, with the reason; it never stops the claim of the rows behind it, and every
command still works on it.

The rows are written around enqueue with raw SQL, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from aol_core.cli import main
from aol_core.models import Action
from aol_core.testing import ActionHarness

DEEP = "[" * 3000 + "]" * 3000
#: what each database can hold that AOL cannot read back as a payload
BAD_PAYLOADS = {
    "sqlite": {"not JSON": "{not json", "NaN": '{"a": NaN}', "too deep": DEEP,
               "an array": "[1, 2]"},
    "postgresql": {"too deep": DEEP, "an array": "[1, 2]", "a string": '"text"',
                   "null": "null"},
}

#: shown as the stored text (the rest are JSON, just not objects, and shown as such)
UNDECODABLE = {"{not json", '{"a": NaN}', DEEP}


def write_payload(harness: ActionHarness, action_id: int, raw: str) -> None:
    is_pg = harness.engine.dialect.name == "postgresql"
    value = "CAST(:raw AS jsonb)" if is_pg else ":raw"
    with harness.engine.begin() as conn:
        conn.execute(text(f"UPDATE aol_actions SET payload = {value} WHERE id = :id"),
                     {"raw": raw, "id": action_id})


@pytest.fixture
def bad_rows(harness: ActionHarness) -> dict[int, str]:
    """Actions of the highest priority whose stored payloads cannot be decoded: id -> text."""
    rows = {}
    for raw in BAD_PAYLOADS[harness.engine.dialect.name].values():
        action_id = harness.enqueue("TEST_NOOP", {}, priority=100)
        write_payload(harness, action_id, raw)
        rows[action_id] = raw
    return rows


def test_undecodable_rows_fail_alone_and_the_rest_run(
        harness: ActionHarness, bad_rows: dict[int, str]) -> None:
    good = [harness.enqueue("TEST_NOOP", {"n": n}) for n in range(3)]
    outcomes = harness.run_due()
    assert sorted(o.claim.id for o in outcomes) == good
    assert {harness.action(i).status for i in good} == {"SUCCESS"}
    for bad in bad_rows:
        with harness.engine.connect() as conn:  # columns that can be read: not the payload
            status, attempts, error = conn.execute(
                select(Action.status, Action.attempts, Action.last_error)
                .where(Action.id == bad)).one()
        assert (status, attempts) == ("FAILED", 1)
        assert f"payload of action {bad}" in error
        assert error.endswith("permanent failure, not retried")
        assert [log.message for log in harness.logs(bad)] == [error]
    assert harness.run_due() == []


def cli(db_url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--db", db_url, *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.splitlines()) <= 1, err
    return code, out, err


def test_every_command_works_on_an_undecodable_row(
        harness: ActionHarness, bad_rows: dict[int, str], db_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    for bad, raw in bad_rows.items():
        check_commands(db_url, capsys, bad, raw)


def check_commands(db_url: str, capsys: pytest.CaptureFixture[str], bad: int,
                   raw: str) -> None:
    code, out, _ = cli(db_url, capsys, "actions", "list")
    assert code == 0 and str(bad) in out
    code, out, _ = cli(db_url, capsys, "actions", "list", "--json")
    assert code == 0 and bad in [row["id"] for row in json.loads(out)]
    code, out, _ = cli(db_url, capsys, "actions", "show", str(bad), "--json")
    assert code == 0
    assert json.loads(out)["payload"] == (raw if raw in UNDECODABLE else json.loads(raw))
    code, out, _ = cli(db_url, capsys, "actions", "show", str(bad))
    assert code == 0
    if raw in UNDECODABLE:
        assert f"{raw}  (stored text that cannot be decoded)" in out
    code, _, err = cli(db_url, capsys, "actions", "artifact", str(bad), "proof.txt")
    assert code == 1 and "has no artifact named 'proof.txt'" in err
    assert cli(db_url, capsys, "actions", "cancel", str(bad))[0] == 0
    assert cli(db_url, capsys, "actions", "retry", str(bad))[0] == 0
    assert cli(db_url, capsys, "health", "--json")[0] in (0, 1)
