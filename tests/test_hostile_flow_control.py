"""Hostile handlers against snooze and hold: what they raise must be stored or refused
clearly, never leave the action stuck RUNNING to be run again after its lease."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aol_core.config import Settings
from aol_core.models import Status
from aol_core.plugins import PluginRegistry, load_plugins
from aol_core.testing import ActionHarness

HOSTILE_PLUGIN = "aol-hostile-actions"


@pytest.fixture
def hostile(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ActionHarness]:
    """A harness on a fresh database with the hostile plugin's types and tables."""
    monkeypatch.setenv("AOL_PLUGINS", HOSTILE_PLUGIN)
    settings = Settings(database_url=db_url, retry_base_seconds=0, plugins=(HOSTILE_PLUGIN,))
    registry: PluginRegistry = load_plugins(settings)
    harness = ActionHarness(db_url, registry=registry, settings=settings)
    yield harness
    harness.close()


def test_a_hold_reason_with_a_nul_character_is_stored_escaped(hostile: ActionHarness) -> None:
    action = hostile.run("HOSTILE_NUL", {"where": "hold"}, max_attempts=5)
    assert action.status == Status.HELD
    assert action.attempts == 1
    assert "\x00" not in str(action.last_error) and "in the reason" in str(action.last_error)


def test_a_huge_hold_reason_is_stored_capped(hostile: ActionHarness) -> None:
    action = hostile.run("HOSTILE_HUGE", {"where": "hold", "mb": 5}, max_attempts=5)
    assert action.status == Status.HELD
    assert str(action.last_error).startswith("held: xxx")
    assert len(str(action.last_error)) < 10_000


@pytest.mark.parametrize("days", [10**8, -(10**8)])
def test_a_snooze_beyond_any_date_fails_the_action_for_good_saying_why(
    hostile: ActionHarness, days: int,
) -> None:
    action = hostile.run("HOSTILE_SNOOZE", {"days": days}, max_attempts=5)
    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert "snooze" in str(action.last_error).lower()
