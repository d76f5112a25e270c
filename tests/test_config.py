"""Settings, URLs and times: parsed in one place, refused with the name of what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aol_core.config import Settings
from aol_core.db import mask_url, parse_url
from aol_core.errors import ConfigError
from aol_core.timeutil import parse_when


def test_defaults_apply_when_nothing_is_set() -> None:
    settings = Settings.from_env({})
    assert (settings.database_url, settings.max_attempts, settings.lease_seconds,
            settings.batch_size, settings.plugins) == ("sqlite:///aol.db", 10, 60.0, 10, None)


def test_environment_overrides_defaults() -> None:
    settings = Settings.from_env({"AOL_RETRY_BASE_SECONDS": "0.5", "AOL_PLUGINS": "a, b"})
    assert (settings.retry_base_seconds, settings.plugins) == (0.5, ("a", "b"))


@pytest.mark.parametrize(("var", "value", "message"), [
    ("AOL_LEASE_SECONDS", "soon", "AOL_LEASE_SECONDS must be a number, not 'soon'"),
    ("AOL_MAX_ATTEMPTS", "0", "AOL_MAX_ATTEMPTS must be at least 1, not '0'"),
    ("AOL_DATABASE_URL", " ", "AOL_DATABASE_URL is set but empty"),
])
def test_a_bad_environment_value_is_named(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({var: value})


@pytest.mark.parametrize("url", ["postgres://u:p@h/db", "postgresql://u:p@h/db"])
def test_hosting_style_postgres_urls_use_psycopg_3(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql://aol:hunter2@db.example/aol") == "postgresql://aol:***@db.example/aol"


@pytest.mark.parametrize(("text", "seconds"), [("+30s", 30), ("+5m", 300), ("+1h", 3600),
                                               ("+2d", 172800), ("+1.5m", 90)])
def test_relative_times(text: str, seconds: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_when(text, now) == now + timedelta(seconds=seconds)


def test_iso_times_need_an_offset() -> None:
    assert parse_when("2026-01-01T10:00:00+01:00") == datetime(2026, 1, 1, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_when("2026-01-01T10:00:00")


def test_the_schema_head_constant_matches_the_newest_migration() -> None:
    from aol_core import schema

    assert schema.alembic_head() == schema.HEAD_REVISION


def test_retention_is_a_duration() -> None:
    assert Settings.from_env({"AOL_RETENTION": "12h"}).retention == timedelta(hours=12)
    assert Settings.from_env({"AOL_RETENTION": "0"}).retention == timedelta(0)
    with pytest.raises(ConfigError, match="AOL_RETENTION: not a duration: 'soon'"):
        Settings.from_env({"AOL_RETENTION": "soon"})
