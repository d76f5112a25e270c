"""Hostile schedules and operator input: a schedule that has run out of slots, or never has
one, must neither stop the ticks of the others nor reach the CLI as an internal error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from aol_core import Schedule, scheduler
from aol_core.errors import InvalidSchedule
from aol_core.models import ScheduleDefinition
from aol_core.plugins import PluginRegistry

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
