"""Rate limits and concurrency caps at claim time, on SQLite and PostgreSQL: what a claim of a
limited type takes, what it leaves waiting, and operators' overrides."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from aol_test_actions import CAP, CAP_PER_ACCOUNT, RATE, RATE_PER_ACCOUNT
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from aol_core import ActionSpec, Cap, NewAction, RateLimit, enqueue_many, flow
from aol_core.config import Settings
from aol_core.models import Action, Status
from aol_core.models import actions_table as actions
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import utcnow
from aol_core.worker import Worker, WorkerOptions
from helpers import aol, statuses


def _enqueue(sessions: sessionmaker[Session], action_type: str, *payloads: dict[str, str]
             ) -> list[int]:
    with sessions() as session, session.begin():
        return [e.id for e in enqueue_many(
            session, [NewAction(action_type, dict(p)) for p in payloads])]


def _claim(engine: Engine, action_type: str, limits: flow.Limits, limit: int = 100) -> list[int]:
    claims = flow.claim_type(engine, action_type, limits, worker="w", limit=limit,
                             lease_seconds=60, now=utcnow())
    return [claim.id for claim in claims]


def _finish(engine: Engine, ids: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(update(actions).where(actions.c.id.in_(ids))
                     .values(status=Status.SUCCESS.value))


def test_actions_over_a_rate_limit_wait_unclaimed_with_no_attempt_used(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    ids = _enqueue(sessions, "TEST_LIMITED_RATE", *({} for _ in range(5)))
    claimed = _claim(engine, "TEST_LIMITED_RATE", flow.Limits(rate=RATE))
    assert claimed == ids[: RATE.count]
    _finish(engine, claimed)  # finished actions still count in the window
    assert _claim(engine, "TEST_LIMITED_RATE", flow.Limits(rate=RATE)) == []
    with sessions() as session:
        waiting = [session.get(Action, i) for i in ids[RATE.count:]]
        assert [(a.status, a.attempts) for a in waiting if a] == [(Status.PENDING, 0)] * 2


def test_a_rate_limit_allows_new_starts_once_old_ones_leave_its_window(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    limits = flow.Limits(rate=RateLimit(1, timedelta(milliseconds=200)))
    first, second = _enqueue(sessions, "TEST_LIMITED_RATE", {}, {})
    assert _claim(engine, "TEST_LIMITED_RATE", limits) == [first]
    # polled, never slept for a fixed time: the window is measured on the database's clock
    deadline = utcnow() + timedelta(seconds=60)
    claimed: list[int] = []
    while not claimed and utcnow() < deadline:
        claimed = _claim(engine, "TEST_LIMITED_RATE", limits)
    assert claimed == [second]


def test_a_concurrency_cap_counts_running_actions_and_frees_a_place_when_one_settles(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    ids = _enqueue(sessions, "TEST_LIMITED_CAP", *({} for _ in range(4)))
    limits = flow.Limits(cap=CAP)
    running = _claim(engine, "TEST_LIMITED_CAP", limits)
    assert running == ids[: CAP.count]
    assert _claim(engine, "TEST_LIMITED_CAP", limits) == []
    _finish(engine, running[:1])
    assert _claim(engine, "TEST_LIMITED_CAP", limits) == [ids[CAP.count]]


def test_per_key_caps_are_independent_per_key(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    a1, a2, b1 = _enqueue(sessions, "TEST_LIMITED_CAP",
                          {"account": "a"}, {"account": "a"}, {"account": "b"})
    limits = flow.Limits(cap=CAP_PER_ACCOUNT)
    assert _claim(engine, "TEST_LIMITED_CAP", limits) == [a1, b1]
    _finish(engine, [a1])
    assert _claim(engine, "TEST_LIMITED_CAP", limits) == [a2]


def test_a_claim_takes_no_more_than_it_is_asked_for_within_the_limits(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    ids = _enqueue(sessions, "TEST_LIMITED_CAP", *({} for _ in range(3)))
    assert _claim(engine, "TEST_LIMITED_CAP", flow.Limits(cap=CAP), limit=1) == ids[:1]


def test_an_operator_override_replaces_the_declared_limits_until_cleared(
    engine: Engine, registry: PluginRegistry
) -> None:
    specs = {name: route.spec for name, route in registry.routes.items()}
    control = flow.FlowControl(engine, specs, refresh_seconds=0)
    assert control.limited()["TEST_LIMITED_CAP"] == flow.Limits(cap=CAP)
    assert "TEST_NOOP" not in control.limited()
    with engine.begin() as conn:
        flow.set_override(conn, "TEST_NOOP", (5, timedelta(minutes=1)), None, "account")
        flow.set_override(conn, "TEST_LIMITED_CAP", None, 7, None)
    assert control.limited()["TEST_NOOP"] == flow.Limits(
        rate=RateLimit(5, timedelta(minutes=1), key="account"))
    assert control.limited()["TEST_LIMITED_CAP"].cap == Cap(7)
    with engine.begin() as conn:
        assert flow.clear_override(conn, "TEST_NOOP")
    assert "TEST_NOOP" not in control.limited()


def test_aol_limits_set_list_and_clear(db_url: str, engine: Engine) -> None:
    set_ = aol("limits", "set", "TEST_NOOP", "--rate", "10/1m", "--concurrency", "2",
               "--key", "account", db_url=db_url)
    assert set_.returncode == 0, set_.stderr
    listed = aol("limits", "--json", db_url=db_url)
    assert listed.returncode == 0, listed.stderr
    noop = next(row for row in json.loads(listed.stdout) if row["action_type"] == "TEST_NOOP")
    assert noop == {"action_type": "TEST_NOOP", "source": "operator",
                    "rate": {"count": 10, "period_seconds": 60.0, "key": "account"},
                    "concurrency": {"count": 2, "key": "account"}}
    cleared = aol("limits", "clear", "TEST_NOOP", db_url=db_url)
    assert cleared.returncode == 0, cleared.stderr
    listed = aol("limits", db_url=db_url)
    assert "TEST_NOOP" not in listed.stdout and "TEST_LIMITED_CAP" in listed.stdout


def test_aol_limits_set_refuses_a_malformed_rate(db_url: str, engine: Engine) -> None:
    refused = aol("limits", "set", "TEST_NOOP", "--rate", "ten a minute", db_url=db_url)
    assert refused.returncode != 0
    assert "N/DURATION" in refused.stderr


def test_an_action_of_another_key_behind_hundreds_at_their_limit_is_claimed(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    limits = flow.Limits(rate=RATE_PER_ACCOUNT, cap=CAP_PER_ACCOUNT)
    first_a, *_ = _enqueue(sessions, "TEST_LIMITED_PER_ACCOUNT",
                           *({"account": "a"} for _ in range(300)))
    assert _claim(engine, "TEST_LIMITED_PER_ACCOUNT", limits) == [first_a]  # a at its cap
    [b] = _enqueue(sessions, "TEST_LIMITED_PER_ACCOUNT", {"account": "b"})
    assert _claim(engine, "TEST_LIMITED_PER_ACCOUNT", limits) == [b]


def test_actions_keyed_by_another_field_at_enqueue_are_keyed_again_as_claims_meet_them(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    # An operator keyed TEST_NOOP, which declares no limits: its actions were enqueued
    # without a key, and the claims key them by the field in force.
    limits = flow.Limits(cap=Cap(1, key="account"))
    first_a, *rest_a = _enqueue(sessions, "TEST_NOOP", *({"account": "a"} for _ in range(300)))
    [b] = _enqueue(sessions, "TEST_NOOP", {"account": "b"})
    claimed = [id_ for _ in range(3) for id_ in _claim(engine, "TEST_NOOP", limits)]
    assert claimed == [first_a, b]
    with sessions() as session:
        keys = {session.get(Action, id_).flow_key for id_ in rest_a}  # type: ignore[union-attr]
    assert keys == {"account=a"}


def test_enqueue_stores_the_key_of_the_declared_per_key_limit(
    sessions: sessionmaker[Session]
) -> None:
    keyed, unkeyed = _enqueue(sessions, "TEST_LIMITED_PER_ACCOUNT", {"account": "x"}, {})
    [whole_type] = _enqueue(sessions, "TEST_LIMITED_CAP", {"account": "x"})
    with sessions() as session:
        stored = [session.get(Action, i).flow_key  # type: ignore[union-attr]
                  for i in (keyed, unkeyed, whole_type)]
    assert stored == ["account=x", "account=null", None]


def test_a_key_longer_than_its_column_is_kept_as_its_digest() -> None:
    key = flow.key_of("account", {"account": "x" * 1000})
    assert key.startswith("sha256:") and len(key) <= 255
    assert key != flow.key_of("account", {"account": "x" * 999})


def test_a_spec_refuses_a_rate_limit_and_a_cap_kept_by_different_fields() -> None:
    with pytest.raises(ValueError, match="share one key field"):
        ActionSpec("T", rate_limit=RateLimit(1, timedelta(seconds=1), key="account"),
                   concurrency=Cap(1, key="user"))


def test_a_burst_worker_waits_for_the_rate_window_and_runs_every_due_action(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry,
    settings: Settings,
) -> None:
    ids = _enqueue(sessions, "TEST_LIMITED_RATE", *({} for _ in range(2 * RATE.count + 1)))
    worker = Worker(engine, registry, settings.with_overrides(poll_interval=0.05),
                    WorkerOptions(burst=True))
    assert worker.run() == 0
    assert statuses(sessions) == dict.fromkeys(ids, "SUCCESS")


def test_a_burst_worker_does_not_wait_for_actions_due_later(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry,
    settings: Settings,
) -> None:
    with sessions() as session, session.begin():
        [later] = enqueue_many(session, [NewAction("TEST_LIMITED_RATE", {},
                                                   not_before=utcnow() + timedelta(hours=1))])
    worker = Worker(engine, registry, settings.with_overrides(poll_interval=0.05),
                    WorkerOptions(burst=True))
    assert worker.run() == 0
    assert statuses(sessions) == {later.id: "PENDING"}
    assert "1 action(s) wait" in worker.stop_reason


def test_a_worker_looks_at_a_limited_type_that_had_nothing_to_start_again_after_its_interval(
    engine: Engine, sessions: sessionmaker[Session], registry: PluginRegistry
) -> None:
    specs = {name: route.spec for name, route in registry.routes.items()}
    patient = flow.FlowControl(engine, specs, refresh_seconds=3600)
    eager = flow.FlowControl(engine, specs, refresh_seconds=0)

    def claim(control: flow.FlowControl) -> list[int]:
        return [c.id for c in control.claim(worker="w", limit=10, lease_seconds=60,
                                            now=utcnow())]

    assert claim(patient) == []  # nothing due: a backlog would have been read once
    [due] = _enqueue(sessions, "TEST_LIMITED_CAP", {})
    assert claim(patient) == []  # not looked at again within its interval
    assert claim(eager) == [due]


def test_a_cap_an_operator_makes_type_wide_counts_what_already_runs_under_a_key(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _enqueue(sessions, "TEST_LIMITED_CAP", *({"account": "a"} for _ in range(3)))
    assert len(_claim(engine, "TEST_LIMITED_CAP", flow.Limits(cap=Cap(1, "account")))) == 1
    assert _claim(engine, "TEST_LIMITED_CAP", flow.Limits(cap=Cap(1))) == []


def test_a_cap_re_keyed_by_an_operator_counts_what_already_runs_under_the_new_key(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _enqueue(sessions, "TEST_LIMITED_CAP", {"account": "a", "brand": "x"},
             {"account": "b", "brand": "x"})
    assert len(_claim(engine, "TEST_LIMITED_CAP", flow.Limits(cap=Cap(1, "account")))) == 2
    _enqueue(sessions, "TEST_LIMITED_CAP", {"account": "c", "brand": "x"})
    assert _claim(engine, "TEST_LIMITED_CAP", flow.Limits(cap=Cap(2, "brand"))) == []
