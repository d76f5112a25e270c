"""Rate limits and concurrency caps held across three ``aol worker`` processes, on SQLite and
PostgreSQL: the starts the database recorded never exceed a rate in any window, the spans
the handlers recorded never overlap past a cap, and per-key limits hold per key."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pytest
from aol_test_actions import CAP, CAP_PER_ACCOUNT, RATE, RATE_PER_ACCOUNT, spans
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from test_worker_processes import (  # type: ignore[import-not-found]
    POLL,
    Spawn,
    enqueue,
    spawn,
    wait_live,
    wait_until,
)

from aol_core import NewAction
from aol_core.models import Status
from aol_core.models import actions_table as actions

pytestmark = pytest.mark.slow
__all__ = ["spawn"]  # a fixture, imported for this module's tests


def _run_on_three_workers(engine: Engine, sessions: sessionmaker[Session], spawn: Spawn,
                          items: list[NewAction]) -> list[Any]:
    """Run ``items`` on three workers of four runners each; their rows once all succeeded."""
    ids = enqueue(sessions, *items)
    workers = [spawn("--poll-interval", POLL, "--concurrency", "4") for _ in range(3)]
    wait_live(engine, *workers)

    def finished() -> list[Any] | None:
        with engine.connect() as conn:
            rows = list(conn.execute(select(actions).where(actions.c.id.in_(ids))))
        return rows if all(row.status == Status.SUCCESS for row in rows) else None

    rows: list[Any] = wait_until(finished, "the workers to run every action", timeout=180,
                                 watch=workers)
    for worker in workers:
        assert worker.stop() == 0
    return rows


def _most_in_a_window(starts: Iterable[datetime], seconds: float) -> int:
    """The most starts in any window [t, t + seconds)."""
    ordered = sorted(starts)
    return max(sum(1 for other in ordered if 0 <= (other - s).total_seconds() < seconds)
               for s in ordered)


def _most_overlapping(intervals: Iterable[tuple[float, float]]) -> int:
    """The most intervals open at one instant (one ending as another begins do not overlap)."""
    given = list(intervals)
    events = sorted([(b, 1) for b, _ in given] + [(e, -1) for _, e in given])
    open_now = most = 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    return most


def _spans(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(spans)))


def test_a_rate_limit_holds_across_three_worker_processes(
    engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    rows = _run_on_three_workers(engine, sessions, spawn,
                                 [NewAction("TEST_LIMITED_RATE", {}) for _ in range(12)])
    assert _most_in_a_window((row.started_at for row in rows),
                             RATE.period.total_seconds()) <= RATE.count
    # waiting over the limit used no attempt: each ran on its first
    assert {row.attempts for row in rows} == {1}


def test_a_concurrency_cap_holds_across_three_worker_processes(
    engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    rows = _run_on_three_workers(engine, sessions, spawn,
                                 [NewAction("TEST_LIMITED_CAP", {"sleep": 0.3})
                                  for _ in range(12)])
    assert _most_overlapping((s.began, s.ended) for s in _spans(engine)) <= CAP.count
    assert {row.attempts for row in rows} == {1}


def test_per_key_limits_hold_for_each_key_across_three_worker_processes(
    engine: Engine, sessions: sessionmaker[Session], spawn: Spawn
) -> None:
    items = [NewAction("TEST_LIMITED_PER_ACCOUNT", {"account": account, "sleep": 0.2})
             for account in "abc" for _ in range(4)]
    rows = _run_on_three_workers(engine, sessions, spawn, items)
    starts: dict[str, list[datetime]] = defaultdict(list)
    for row in rows:
        starts[row.payload["account"]].append(row.started_at)
    spans_by_account: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for span in _spans(engine):
        spans_by_account[span.account].append((span.began, span.ended))
    assert set(starts) == set(spans_by_account) == {"a", "b", "c"}
    for account in "abc":
        assert _most_in_a_window(starts[account], RATE_PER_ACCOUNT.period.total_seconds()) \
            <= RATE_PER_ACCOUNT.count
        assert _most_overlapping(spans_by_account[account]) <= CAP_PER_ACCOUNT.count
    assert {row.attempts for row in rows} == {1}
