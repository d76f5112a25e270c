"""Hostile schedules and operator input: a schedule that has run out of slots, or never has
one, must not stop the ticks of the others, and nothing the CLI cannot store reaches the
database (one-line refusals, never an internal error)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from aol_core import Schedule, scheduler
from aol_core.errors import InvalidSchedule
from aol_core.models import ScheduleDefinition
from aol_core.plugins import PluginRegistry
from helpers import aol

START = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
#: croniter's seven fields end with seconds and year: one slot, 2026-06-01 13:00 UTC
ONCE_IN_2026 = "0 13 1 6 * 0 2026"


def add(sessions: sessionmaker[Session], registry: PluginRegistry, name: str,
        cron: str) -> None:
    schedule = Schedule(name, "TEST_NOOP", cron=cron, source="operator")
    with sessions() as session, session.begin():
        scheduler.add_schedule(session, schedule, registry, START)


def test_a_schedule_past_its_last_slot_leaves_the_others_ticking(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry,
) -> None:
    add(sessions, registry, "once", ONCE_IN_2026)
    add(sessions, registry, "hourly", "0 * * * *")
    first = scheduler.tick(engine, registry, now=START + timedelta(hours=1))
    later = scheduler.tick(engine, registry, now=START + timedelta(hours=2))

    assert sorted(e.idempotency_key.split(":")[1] for e in first) == ["hourly", "once"]
    assert [e.idempotency_key.split(":")[1] for e in later] == ["hourly"]
    with engine.connect() as conn:
        listed = {s.schedule.name: s.next_slot
                  for s in scheduler.statuses(conn, registry, START + timedelta(hours=2))}
    assert listed["once"] is None and listed["hourly"] is not None


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 1 1 * 0 2020"])
def test_a_schedule_with_no_slot_after_now_is_refused_and_not_stored(
    sessions: sessionmaker[Session], registry: PluginRegistry, cron: str,
) -> None:
    with pytest.raises(InvalidSchedule, match="has no slot after now"):
        add(sessions, registry, "never", cron)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ScheduleDefinition)) == 0


@pytest.mark.parametrize(("args", "named"), [
    (["--every", "30000d", "TEST_NOOP"], "interval"),
    (["--every", "99999999999d", "TEST_NOOP"], "duration"),
    (["--every", "1m", "TEST_NOOP", "--payload", '{"a": "\\u0000"}'], "NUL"),
    (["--every", "1m", "T" * 150], "action type"),
    (["--cron", "0 0 30 2 *", "TEST_NOOP"], "no slot"),
    (["--cron", ",".join(["0"] * 120) + " * * * *", "TEST_NOOP"], "at most 200"),
])
def test_cli_refuses_a_schedule_it_cannot_keep_in_one_line(
    engine: Engine, db_url: str, sessions: sessionmaker[Session], args: list[str], named: str,
) -> None:
    refused = aol("schedules", "add", "bad", *args, db_url=db_url)

    assert refused.returncode != 0
    assert named in refused.stderr and "internal error" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ScheduleDefinition)) == 0


def test_cli_refuses_a_rate_period_beyond_any_date_in_one_line(db_url: str) -> None:
    refused = aol("limits", "set", "TEST_NOOP", "--rate", "5/99999999999d", db_url=db_url)
    assert refused.returncode == 2
    assert "--rate" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize(("args", "named"), [
    (["TEST_NOOP", "--rate", "5/0s"], "period"),
    (["TEST_NOOP", "--rate", "99999999999/1s"], "at most"),
    (["TEST_NOOP", "--concurrency", "99999999999"], "--concurrency"),
    (["TEST_NOOP", "--concurrency", "1", "--key", "k" * 300], "key field"),
    (["TEST_NOOP", "--concurrency", "1", "--key", ""], "key field"),
    (["T" * 300, "--concurrency", "1"], "action type"),
])
def test_aol_limits_set_refuses_what_it_cannot_keep_in_one_line(
    engine: Engine, db_url: str, args: list[str], named: str,
) -> None:
    refused = aol("limits", "set", *args, db_url=db_url)

    assert refused.returncode != 0
    assert named in refused.stderr and "internal error" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "operator" not in aol("limits", db_url=db_url).stdout  # nothing was overridden


@pytest.mark.parametrize("name", ["", "n" * 201, "a\x00b", "a\ud800b"])
def test_a_schedule_name_no_database_can_store_is_refused_where_it_is_declared(
    name: str,
) -> None:
    with pytest.raises(InvalidSchedule, match="schedule name"):
        Schedule(name, "TEST_NOOP", every=timedelta(minutes=1))
