"""Messages a newcomer meets: what people type works, and each error says what to do."""

from __future__ import annotations

import json

from sqlalchemy import Engine

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


#: a value only the payload holds, which the database's error would quote
SECRET = "s3cret-payload-value"
#: a guard an operator might add: payloads whose "n" is not a number are refused, by an
#: error that (on PostgreSQL) quotes the value it could not convert
REFUSE_TEXT_N = {
    "postgresql": [
        "CREATE FUNCTION refuse_text_n() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM (NEW.payload->>'n')::integer; RETURN NEW; END $$",
        "CREATE TRIGGER refuse_text_n BEFORE INSERT ON aol_actions FOR EACH ROW "
        "EXECUTE FUNCTION refuse_text_n()",
    ],
    "sqlite": [
        "CREATE TRIGGER refuse_text_n BEFORE INSERT ON aol_actions "
        "WHEN typeof(json_extract(NEW.payload, '$.n')) = 'text' "
        "BEGIN SELECT RAISE(ABORT, 'payload n must be a number'); END",
    ],
}
REFUSED = {
    "postgresql": 'invalid input syntax for type integer: "…" (SQLSTATE 22P02)',
    "sqlite": "payload n must be a number (SQLITE_CONSTRAINT_TRIGGER)",
}


def test_a_database_error_is_one_line_without_the_values_it_quotes(engine: Engine,
                                                                     db_url: str) -> None:
    with engine.begin() as conn:
        for statement in REFUSE_TEXT_N[engine.dialect.name]:
            conn.exec_driver_sql(statement)
    result = aol("enqueue", "TEST_NOOP", json.dumps({"n": SECRET}), db_url=db_url)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert REFUSED[engine.dialect.name] in line
    assert SECRET not in line
