"""The documented limits: enqueue refuses what could not be stored and read back, in one line
naming the limit; log lines and error text are made storable instead of refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from aol_core import limits
from aol_core.config import Settings
from aol_core.errors import ConfigError, InvalidPayload
from aol_core.testing import ActionHarness


def nested(levels: int) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for _ in range(levels - 1):
        payload = {"a": payload}
    return payload


def refusal(harness: ActionHarness, payload: dict[str, Any], **options: Any) -> str:
    with pytest.raises(InvalidPayload) as refused:
        harness.enqueue("TEST_NOOP", payload, **options)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_a_payload_over_the_size_limit_is_refused_naming_the_limit(
        harness: ActionHarness) -> None:
    harness.settings = replace(harness.settings, max_payload_bytes=100)
    message = refusal(harness, {"text": "x" * 100})
    assert "over the limit of 100 (AOL_MAX_PAYLOAD_BYTES)" in message


def test_a_payload_at_the_depth_limit_is_accepted_and_one_deeper_refused(
        harness: ActionHarness) -> None:
    depth = harness.settings.max_payload_depth
    assert harness.run("TEST_NOOP", nested(depth)).status == "SUCCESS"
    message = refusal(harness, nested(depth + 1))
    assert f"nested {depth + 1} levels deep, over the limit of {depth}" in message


def test_a_payload_nested_beyond_the_encoder_is_refused_not_crashed(
        harness: ActionHarness) -> None:
    assert "nested deeper than the limit" in refusal(harness, nested(5000))


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused(harness: ActionHarness, number: float) -> None:
    assert "NaN or Infinity" in refusal(harness, {"n": [1, number]})


@pytest.mark.parametrize("payload", [{"text": "a\x00b"}, {"ke\x00y": 1}, {"l": ["\x00"]}])
def test_a_nul_character_in_a_key_or_string_is_refused(harness: ActionHarness,
                                                       payload: dict[str, Any]) -> None:
    assert "contains a NUL character" in refusal(harness, payload)


def test_a_lone_surrogate_is_refused(harness: ActionHarness) -> None:
    assert "lone surrogate" in refusal(harness, {"text": "\ud800"})


def test_characters_outside_the_basic_plane_are_kept(harness: ActionHarness) -> None:
    action = harness.run("TEST_NOOP", {"text": "launch \U0001f680 é"})
    assert action.payload == {"text": "launch \U0001f680 é"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"priority": 2**31}, "priority must be between -2147483648 and 2147483647"),
        ({"priority": -(2**31) - 1}, "priority must be between"),
        ({"max_attempts": 2**31}, "max_attempts must be between"),
        ({"idempotency_key": "k" * 256}, "idempotency key is 256 characters long"),
        ({"idempotency_key": "a\x00"}, "idempotency key contains a NUL character"),
    ],
)
def test_values_the_columns_cannot_hold_are_refused(harness: ActionHarness,
                                                    options: dict[str, Any],
                                                    message: str) -> None:
    assert message in refusal(harness, {}, **options)


def test_an_action_type_longer_than_its_column_is_refused(harness: ActionHarness) -> None:
    with pytest.raises(InvalidPayload, match="action type is 101 characters long"):
        harness.enqueue("T" * 101, {}, force=True)


def test_the_limits_are_settings() -> None:
    settings = Settings.from_env({"AOL_MAX_PAYLOAD_BYTES": "2048", "AOL_MAX_PAYLOAD_DEPTH": "8",
                                  "AOL_MAX_ARTIFACT_BYTES": "0"})
    assert (settings.max_payload_bytes, settings.max_payload_depth,
            settings.max_artifact_bytes) == (2048, 8, 0)


def test_the_depth_setting_stays_below_what_aol_can_read() -> None:
    with pytest.raises(ConfigError, match=f"AOL_MAX_PAYLOAD_DEPTH must be at most "
                                          f"{limits.DEPTH_CEILING}"):
        Settings.from_env({"AOL_MAX_PAYLOAD_DEPTH": str(limits.DEPTH_CEILING + 1)})


def test_storable_text_escapes_nul_and_lone_surrogates() -> None:
    assert limits.storable_text("a\x00b\ud800", 100) == "a\\x00b\\ud800"


def test_storable_text_cuts_long_text_with_a_note() -> None:
    assert limits.storable_text("x" * 30, 10) == "x" * 10 + "… [20 more characters cut]"


def test_an_exception_whose_str_fails_is_still_described() -> None:
    class Hostile(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert limits.describe_error(Hostile()) == "Hostile: <Hostile whose str() failed>"


@pytest.mark.parametrize("raw", ["999999999d", "99999999999999d"])
def test_a_retention_too_long_to_compute_with_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="AOL_RETENTION"):
        Settings.from_env({"AOL_RETENTION": raw})


#: what a statement naming a table that does not exist fails with: the name is kept, as
#: it comes from the statement's own text (PostgreSQL's SQLSTATE class 42)
UNDEFINED_TABLE = {
    "postgresql": 'relation "no_such_table" does not exist (SQLSTATE 42P01)',
    "sqlite": "no such table: no_such_table (SQLITE_ERROR)",
}


def test_a_database_error_names_what_the_statement_named(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(DBAPIError) as failed:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert limits.database_message(failed.value) == UNDEFINED_TABLE[engine.dialect.name]


def test_an_exception_from_elsewhere_is_no_database_error() -> None:
    assert limits.database_message(ValueError("not a database")) is None
