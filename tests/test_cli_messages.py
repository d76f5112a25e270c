"""Messages a newcomer meets: what people type works, and each error says what to do."""

from __future__ import annotations

import json

from helpers import aol, run_aol


def test_the_payload_may_be_given_as_a_positional_argument(engine: object, db_url: str) -> None:
    result = aol("enqueue", "TEST_STRICT", '{"n": 1}', "--json", db_url=db_url)
    assert result.returncode == 0, result.stderr
    shown = aol("actions", "show", str(json.loads(result.stdout)["id"]), "--json", db_url=db_url)
    assert json.loads(shown.stdout)["payload"]["n"] == 1


def test_the_payload_given_twice_is_a_usage_error(db_url: str) -> None:
    result = aol("enqueue", "TEST_STRICT", '{"n": 1}', "--payload", '{"n": 2}', db_url=db_url)
    assert result.returncode == 2


def test_an_unknown_type_suggests_the_closest_and_names_force(engine: object,
                                                              db_url: str) -> None:
    result = aol("enqueue", "test_strict", '{"n": 1}', db_url=db_url)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("aol: error: unknown action type test_strict "
                           "(did you mean TEST_STRICT?); known types: ")
    assert "--force" in line


def test_a_path_given_as_the_database_is_echoed_with_a_url_example() -> None:
    result = run_aol("--db", "aol.db", "actions", "list")
    assert (result.returncode, result.stderr.strip()) == (
        1, "aol: error: not a database URL: 'aol.db'; use e.g. sqlite:///aol.db or "
           "postgresql://user@host/dbname")


def test_a_schema_failure_lists_every_broken_rule(engine: object, db_url: str) -> None:
    result = aol("enqueue", "TEST_STRICT", '{"n": "x", "extra": 1}', db_url=db_url)
    assert result.returncode == 1
    assert "at payload: Additional properties are not allowed" in result.stderr
    assert "at n: 'x' is not of type 'integer'" in result.stderr
