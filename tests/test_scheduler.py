"""Ticking schedules through the database with an injected clock, on SQLite and PostgreSQL:
each slot once, catch-up after downtime, pause and resume, plugin and operator schedules."""

from __future__ import annotations

import json
import textwrap
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from aol_core import Schedule, scheduler
from aol_core.config import Settings
from aol_core.errors import InvalidSchedule, ScheduleNotFound
from aol_core.health import check_health
from aol_core.models import Action, ScheduleState
from aol_core.plugins import PluginRegistry, load_plugins
from aol_core.schedules import CATCH_UP_ALL_LIMIT
from aol_core.testing import ActionHarness, FixedClock
from helpers import aol

START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
HOURLY = "0 * * * *"


def add(sessions: sessionmaker[Session], registry: PluginRegistry, name: str = "hourly",
        now: datetime | None = START, **options: Any) -> Schedule:
    options.setdefault("cron", None if "every" in options else HOURLY)
    schedule = Schedule(name, options.pop("action_type", "TEST_NOOP"), source="operator",
                        **options)
    with sessions() as session, session.begin():
        scheduler.add_schedule(session, schedule, registry, now)
    return schedule


def enqueued(sessions: sessionmaker[Session]) -> list[tuple[str, dict[str, Any]]]:
    with sessions() as session:
        return [(a.idempotency_key, a.payload)
                for a in session.scalars(select(Action).order_by(Action.not_before))]


def state(sessions: sessionmaker[Session], name: str = "hourly") -> ScheduleState:
    with sessions() as session:
        found = session.get(ScheduleState, name)
        assert found is not None
        return found


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def key(slot: datetime, name: str = "hourly") -> str:
    return scheduler.slot_key(name, slot)


def test_a_due_slot_is_enqueued_once_with_its_slot_in_the_payload(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry, payload={"for": "{slot}"}, timezone="Europe/Berlin")
    assert scheduler.tick(engine, registry, now=START + hours(0.5)) == []  # 13:00 not yet
    first = scheduler.tick(engine, registry, now=START + hours(1))
    again = scheduler.tick(engine, registry, now=START + hours(1.1))

    slot = datetime(2026, 6, 1, 13, tzinfo=UTC)
    assert [(e.idempotency_key, e.created) for e in first] == [(key(slot), True)]
    assert again == []
    assert enqueued(sessions) == [(key(slot), {"for": "2026-06-01T15:00:00+02:00"})]
    assert state(sessions).last_slot == slot and state(sessions).missed == 0


def test_threads_ticking_the_same_moments_enqueue_each_slot_once(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry, cron="*/10 * * * *")
    moments = [START + timedelta(minutes=3 * i) for i in range(1, 41)]  # two hours
    decided: list[list[str]] = []

    def ticker() -> None:
        mine = []
        for now in moments:
            mine += [e.idempotency_key for e in scheduler.tick(engine, registry, now=now)]
        decided.append(mine)

    threads = [threading.Thread(target=ticker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    slots = [key(s) for s in Schedule("hourly", "T", cron="*/10 * * * *").slots(START,
                                                                               moments[-1])]
    assert len(slots) == 12
    assert Counter(k for mine in decided for k in mine) == Counter(slots)  # once, by one thread
    assert [k for k, _ in enqueued(sessions)] == slots
    assert state(sessions).missed == 0


# --- downtime: each catch-up policy ---------------------------------------------------------


def down_for_five_hours(engine: Engine, sessions: sessionmaker[Session],
                        registry: PluginRegistry, catch_up: str) -> list[str]:
    add(sessions, registry, catch_up=catch_up)
    scheduler.tick(engine, registry, now=START + hours(5.25))  # back at 17:15
    return [k for k, _ in enqueued(sessions)]


def test_catch_up_latest_runs_the_most_recent_missed_slot_and_counts_the_others(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    assert down_for_five_hours(engine, sessions, registry, "latest") == [
        key(datetime(2026, 6, 1, 17, tzinfo=UTC))]
    assert state(sessions).missed == 4


def test_catch_up_all_runs_every_missed_slot(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    assert down_for_five_hours(engine, sessions, registry, "all") == [
        key(datetime(2026, 6, 1, h, tzinfo=UTC)) for h in range(13, 18)]
    assert state(sessions).missed == 0


def test_catch_up_skip_runs_none_of_the_late_slots_and_counts_them(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    assert down_for_five_hours(engine, sessions, registry, "skip") == []
    assert state(sessions).missed == 5
    scheduler.tick(engine, registry, now=START + hours(6) + timedelta(seconds=10))  # 18:00:40
    assert [k for k, _ in enqueued(sessions)] == [key(datetime(2026, 6, 1, 18, tzinfo=UTC))]


def test_catch_up_all_runs_at_most_its_bound_and_counts_the_older_slots(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry, catch_up="all", cron="* * * * *")
    scheduler.tick(engine, registry, now=START + timedelta(minutes=CATCH_UP_ALL_LIMIT + 30))

    ran = enqueued(sessions)
    assert len(ran) == CATCH_UP_ALL_LIMIT
    assert state(sessions).missed == 30
    assert ran[-1][0] == key(datetime(2026, 6, 1, 14, 10, tzinfo=UTC))


# --- operators' schedules -------------------------------------------------------------------


def test_a_schedule_added_later_starts_with_its_next_slot(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry, now=START + hours(3))
    scheduler.tick(engine, registry, now=START + hours(4))
    assert [k for k, _ in enqueued(sessions)] == [key(datetime(2026, 6, 1, 16, tzinfo=UTC))]
    assert state(sessions).missed == 0


def test_a_paused_schedule_enqueues_nothing_and_resumes_with_the_next_slot(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry)
    with sessions() as session, session.begin():
        scheduler.set_paused(session, "hourly", True, registry, START)
    assert scheduler.tick(engine, registry, now=START + hours(3)) == []
    with sessions() as session, session.begin():
        scheduler.set_paused(session, "hourly", False, registry, START + hours(3))
    scheduler.tick(engine, registry, now=START + hours(4))

    assert [k for k, _ in enqueued(sessions)] == [key(datetime(2026, 6, 1, 16, tzinfo=UTC))]
    assert state(sessions).missed == 0  # skipped on purpose, not missed


def test_a_removed_schedule_stops_and_its_name_can_be_used_again(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry)
    with sessions() as session, session.begin():
        scheduler.remove_schedule(session, "hourly", registry)
    assert scheduler.tick(engine, registry, now=START + hours(2)) == []
    add(sessions, registry, now=START + hours(2))
    with sessions() as session, session.begin(), pytest.raises(InvalidSchedule, match="exists"):
        scheduler.add_schedule(session, Schedule("hourly", "TEST_NOOP", cron=HOURLY), registry)
    with sessions() as session, session.begin(), pytest.raises(ScheduleNotFound):
        scheduler.remove_schedule(session, "nope", registry)


def test_a_slot_whose_payload_is_refused_is_counted_and_shown_not_retried(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry, action_type="TEST_STRICT", payload={"n": "not a number"})
    for minutes in (60, 61, 62):
        assert scheduler.tick(engine, registry, now=START + timedelta(minutes=minutes)) == []
    assert enqueued(sessions) == []
    assert state(sessions).missed == 1
    assert "invalid payload for TEST_STRICT" in (state(sessions).last_error or "")


def test_a_schedule_no_plugin_runs_is_not_ticked_and_health_says_so(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    add(sessions, registry, name="orphan", action_type="NOBODY_RUNS_THIS")
    assert scheduler.tick(engine, registry, now=START + hours(2)) == []

    with engine.connect() as conn:
        (listed,) = scheduler.statuses(conn, registry, START)
    assert not listed.routable
    report = check_health(engine, registry)
    (check,) = [c for c in report.checks if c.name.startswith("every schedule")]
    assert not check.ok and "schedule orphan enqueues NOBODY_RUNS_THIS" in check.detail


# --- plugins' schedules ---------------------------------------------------------------------

SCHEDULING_PLUGIN = """
from datetime import timedelta
from aol_core import Schedule, hookimpl

@hookimpl
def aol_register_actions():
    return ["ACME_TICK"]

@hookimpl
def aol_schedules():
    return [Schedule("acme-tick", "ACME_TICK", every=timedelta(minutes=5), catch_up="skip",
                     payload={"at": "{slot}"})]

@hookimpl
def handle_action(action_type, payload):
    return payload
"""


def scheduling_registry(site: Path, source: str = SCHEDULING_PLUGIN) -> PluginRegistry:
    (site / "acme_sched.py").write_text(textwrap.dedent(source))
    info = site / "acme_sched-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-sched\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[aicmo.actions]\nacme_sched = acme_sched\n")
    return load_plugins(Settings(plugins=("acme-sched",)))


def test_a_plugin_schedule_is_ticked_paused_resumed_but_not_removed(
    engine: Engine, sessions: sessionmaker[Session], tmp_site: Path
) -> None:
    registry = scheduling_registry(tmp_site)
    assert list(registry.schedules) == ["acme-tick"]
    scheduler.tick(engine, registry, now=START)  # first seen: starts with the next slot
    (done,) = scheduler.tick(engine, registry, now=START + timedelta(minutes=5))
    assert done.idempotency_key == key(datetime(2026, 6, 1, 12, 5, tzinfo=UTC), "acme-tick")

    with sessions() as session, session.begin():
        scheduler.set_paused(session, "acme-tick", True, registry, START)
    assert scheduler.tick(engine, registry, now=START + timedelta(minutes=20)) == []
    with sessions() as session, session.begin(), pytest.raises(ScheduleNotFound,
                                                              match="paused, not removed"):
        scheduler.remove_schedule(session, "acme-tick", registry)
    with engine.connect() as conn:
        (listed,) = scheduler.statuses(conn, registry, START)
    assert (listed.schedule.source, listed.paused, listed.routable) == ("plugin", True, True)


# --- the command line -----------------------------------------------------------------------


def test_cli_adds_lists_pauses_resumes_and_removes_a_schedule(engine: Engine,
                                                              db_url: str) -> None:
    added = aol("schedules", "add", "weekly", "--cron", "0 8 * * mon", "--tz", "Europe/Berlin",
                "TEST_NOOP", "--payload", '{"week_of": "{slot}"}', "--catch-up", "all",
                db_url=db_url)
    assert added.returncode == 0, added.stderr
    assert "schedule weekly added; next slot" in added.stdout
    interval = aol("schedules", "add", "often", "--every", "15m", "NOBODY_RUNS_THIS",
                   db_url=db_url)
    assert "warning: no plugin installed here runs NOBODY_RUNS_THIS" in interval.stdout
    assert aol("schedules", "pause", "weekly", db_url=db_url).returncode == 0

    listed = json.loads(aol("schedules", "--json", db_url=db_url).stdout)
    assert [(s["name"], s["source"], s["expression"], s["timezone"], s["catch_up"],
             s["paused"], s["routable"]) for s in listed] == [
        ("often", "operator", "every 900s", "UTC", "latest", False, False),
        ("weekly", "operator", "0 8 * * mon", "Europe/Berlin", "all", True, True),
    ]
    table = aol("schedules", db_url=db_url).stdout
    assert "no plugin runs this type" in table and "PAUSED" in table

    assert aol("schedules", "resume", "weekly", db_url=db_url).returncode == 0
    assert aol("schedules", "remove", "often", db_url=db_url).returncode == 0
    listed = json.loads(aol("schedules", "--json", db_url=db_url).stdout)
    assert [(s["name"], s["paused"]) for s in listed] == [("weekly", False)]
    bad = aol("schedules", "add", "x", "--cron", "61 * * * *", "TEST_NOOP", db_url=db_url)
    assert bad.returncode == 1 and "not a cron expression" in bad.stderr


def test_a_plugin_returning_something_else_than_schedules_is_broken(tmp_site: Path) -> None:
    source = SCHEDULING_PLUGIN.replace('return [Schedule(', 'return ["acme-tick", Schedule(')
    registry = scheduling_registry(tmp_site, source)
    (broken,) = registry.broken
    assert "aol_schedules returned 'acme-tick'; expected Schedule objects" in (broken.error or "")
    assert registry.schedules == {}


def test_an_action_learns_its_schedule_slot_from_its_context(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry,
    harness: ActionHarness,
) -> None:
    add(sessions, registry, action_type="TEST_SLOT", timezone="Europe/Berlin")
    [slotted] = scheduler.tick(engine, registry, now=START + hours(1))
    unscheduled = harness.enqueue("TEST_SLOT", {})
    harness.run_due(action_types=["TEST_SLOT"])
    assert harness.action(slotted.id).result == {"slot": "2026-06-01T13:00:00+00:00"}
    assert harness.action(unscheduled).result == {"slot": None}


def _statements_reading(engine: Engine, table: str) -> list[str]:
    """Every statement ``engine`` sends from now on that reads ``table`` (FROM it)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if f"FROM {table}" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_ticker_reads_operator_schedules_again_only_after_an_operator_changed_them(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    ticker = scheduler.Ticker(engine, registry)
    reads = _statements_reading(engine, "aol_schedules")
    ticker.tick(now=START)
    ticker.tick(now=START)
    assert len(reads) == 1
    add(sessions, registry)  # while the ticker runs
    reads.clear()
    assert [e.idempotency_key for e in ticker.tick(now=START + hours(1))] == [
        key(datetime(2026, 6, 1, 13, tzinfo=UTC))]
    ticker.tick(now=START + hours(1))
    assert len(reads) == 1
    with sessions() as session, session.begin():
        scheduler.remove_schedule(session, "hourly", registry)
    assert ticker.tick(now=START + hours(2)) == []


def test_a_tick_follows_the_database_clock_on_postgresql_and_the_machines_on_sqlite(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with sessions() as session, session.begin():
        scheduler.add_schedule(session, Schedule("daily", "TEST_NOOP", every=timedelta(days=1),
                                                 source="operator"), registry)
    # this worker's clock runs two days ahead: a slot is due by it, none by the database's
    ahead = datetime.now(UTC) + timedelta(days=2)
    monkeypatch.setattr("aol_core.scheduler.utcnow", lambda: ahead)
    enqueued = scheduler.tick(engine, registry)
    assert len(enqueued) == (0 if engine.dialect.name == "postgresql" else 1)


def test_ticks_follow_the_test_kits_fixed_clock_on_every_database(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry,
) -> None:
    with FixedClock(START).installed() as clock:
        add(sessions, registry, now=None)
        assert scheduler.tick(engine, registry) == []
        clock.advance(hours=1)
        assert [e.idempotency_key for e in scheduler.tick(engine, registry)] == [
            key(datetime(2026, 6, 1, 13, tzinfo=UTC))]
