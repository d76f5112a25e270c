"""When a schedule's slots fall: cron in IANA zones across DST changes, intervals, and what
a schedule refuses. Pure computation: no database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from aol_core import CatchUp, Schedule
from aol_core.errors import InvalidSchedule


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def local_slots(schedule: Schedule, after: datetime, until: datetime) -> list[str]:
    return [slot.astimezone(schedule.zone).isoformat() for slot in schedule.slots(after, until)]


# --- spring forward: a skipped local time runs once, at the first instant after the jump ---


def test_berlin_spring_forward_daily_slot_in_the_skipped_hour_runs_once_at_three() -> None:
    daily = Schedule("daily", "T", cron="30 2 * * *", timezone="Europe/Berlin")
    assert local_slots(daily, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12)) == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_berlin_spring_forward_several_skipped_times_are_one_slot() -> None:
    quarterly = Schedule("q", "T", cron="*/15 * * * *", timezone="Europe/Berlin")
    assert local_slots(quarterly, utc(2026, 3, 29, 0, 40), utc(2026, 3, 29, 1, 20)) == [
        "2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"]


def test_new_york_spring_forward_daily_slot_in_the_skipped_hour_runs_once_at_three() -> None:
    daily = Schedule("daily", "T", cron="30 2 * * *", timezone="America/New_York")
    assert local_slots(daily, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12)) == [
        "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]


# --- fall back: a repeated local time runs once, at its first occurrence --------------------


def test_berlin_fall_back_daily_slot_in_the_repeated_hour_runs_once() -> None:
    daily = Schedule("daily", "T", cron="30 2 * * *", timezone="Europe/Berlin")
    assert local_slots(daily, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == [
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_new_york_fall_back_hourly_slots_do_not_repeat_the_repeated_hour() -> None:
    hourly = Schedule("hourly", "T", cron="0 * * * *", timezone="America/New_York")
    assert local_slots(hourly, utc(2026, 11, 1, 4, 30), utc(2026, 11, 1, 8, 30)) == [
        "2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"]


def test_slots_asked_for_from_inside_the_repeated_hour_do_not_run_it_again() -> None:
    hourly = Schedule("hourly", "T", cron="30 1 * * *", timezone="America/New_York")
    second_pass = utc(2026, 11, 1, 6, 10)  # 01:10 EST, after 01:30 EDT has passed
    assert hourly.next_slot(second_pass).isoformat() == "2026-11-02T06:30:00+00:00"


# --- intervals are elapsed time ---------------------------------------------------------------


@pytest.mark.parametrize(("zone", "change"), [
    ("Europe/Berlin", utc(2026, 3, 29, 1)), ("Europe/Berlin", utc(2026, 10, 25, 1)),
    ("America/New_York", utc(2026, 3, 8, 7)), ("America/New_York", utc(2026, 11, 1, 6)),
])
def test_an_interval_keeps_its_spacing_across_a_clock_change(zone: str, change: datetime) -> None:
    every = Schedule("every", "T", every=timedelta(minutes=20), timezone=zone)
    slots = list(every.slots(change - timedelta(hours=2), change + timedelta(hours=2)))
    assert len(slots) == 12
    assert {later - earlier for earlier, later in itertools.pairwise(slots)} == {
        timedelta(minutes=20)}


def test_interval_slots_are_the_same_whenever_they_are_computed() -> None:
    every = Schedule("every", "T", every=timedelta(minutes=7))
    assert every.next_slot(utc(2026, 1, 1, 0, 0, 1)) == every.next_slot(utc(2026, 1, 1, 0, 6))
    assert every.next_slot(utc(2026, 1, 1)).timestamp() % 420 == 0


# --- the slot reaches the action ------------------------------------------------------------


def test_slot_and_schedule_placeholders_are_filled_in_nested_payload_strings() -> None:
    weekly = Schedule("weekly", "T", cron="0 8 * * mon", timezone="Europe/Berlin",
                      payload={"week_of": "{slot}", "n": 3, "tags": ["{schedule}", "x"]})
    slot = weekly.next_slot(utc(2026, 6, 30))
    assert weekly.payload_for(slot) == {
        "week_of": "2026-07-06T08:00:00+02:00", "n": 3, "tags": ["weekly", "x"]}


# --- what a schedule refuses ----------------------------------------------------------------


@pytest.mark.parametrize(("options", "problem"), [
    ({"cron": "not cron"}, "not a cron expression"),
    ({"cron": "* * * * *", "every": timedelta(hours=1)}, "not both or neither"),
    ({}, "not both or neither"),
    ({"every": timedelta(milliseconds=500)}, "at least 1"),
    ({"cron": "* * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"cron": "* * * * *", "catch_up": "sometimes"}, "catch-up is one of"),
])
def test_a_schedule_that_cannot_run_is_refused_saying_why(
    options: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidSchedule, match=problem):
        Schedule("bad", "T", **options)  # type: ignore[arg-type]


def test_catch_up_accepts_its_names() -> None:
    assert Schedule("s", "T", cron="* * * * *", catch_up="all").catch_up is CatchUp.ALL
