"""Enqueue: idempotent, validated, and part of the caller's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from aol_core import (
    IdempotencyConflict,
    InvalidPayload,
    NewAction,
    UnknownActionType,
    enqueue,
    enqueue_many,
)
from aol_core.models import Action, Status
from helpers import fetch


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Action)) or 0


def test_enqueue_creates_a_pending_action_due_now(sessions: sessionmaker[Session]) -> None:
    before = datetime.now(UTC)
    with sessions() as session, session.begin():
        done = enqueue(session, "TEST_NOOP", {"a": 1})
    action = fetch(sessions, done.id)
    assert done.created and done.status == Status.PENDING
    assert action.status == Status.PENDING and action.attempts == 0
    assert before <= action.not_before <= datetime.now(UTC)
    assert action.not_before.tzinfo is not None
    assert len(action.idempotency_key) == 32  # a fresh uuid4 when none is given


def test_enqueue_of_an_existing_key_returns_that_action_uncreated(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session, session.begin():
        first = enqueue(session, "TEST_NOOP", {"a": 1}, idempotency_key="k")
    with sessions() as session, session.begin():
        again = enqueue(session, "TEST_NOOP", {"a": 1}, idempotency_key="k")
    assert (again.id, again.created) == (first.id, False)
    assert count(sessions) == 1


def test_same_key_with_another_payload_is_a_conflict(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        enqueue(session, "TEST_NOOP", {"a": 1}, idempotency_key="k")
    with pytest.raises(IdempotencyConflict, match="another payload"), sessions() as session:
        enqueue(session, "TEST_NOOP", {"a": 2}, idempotency_key="k")


def test_same_key_with_another_type_is_a_conflict(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        enqueue(session, "TEST_NOOP", {}, idempotency_key="k")
    with pytest.raises(IdempotencyConflict, match="TEST_NOOP action, not TEST_RECORD"), \
            sessions() as session:
        enqueue(session, "TEST_RECORD", {}, idempotency_key="k")


@pytest.mark.parametrize("payload", [[1, 2], "text", None, 3])
def test_payload_must_be_a_json_object(sessions: sessionmaker[Session], payload: object) -> None:
    with pytest.raises(InvalidPayload, match="must be a JSON object"), sessions() as session:
        enqueue(session, "TEST_NOOP", payload)  # type: ignore[arg-type]


def test_payload_must_be_serialisable_as_json(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidPayload, match="not JSON"), sessions() as session:
        enqueue(session, "TEST_NOOP", {"when": object()})


def test_unknown_type_is_refused_naming_the_known_ones(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(UnknownActionType, match=r"NOPE.*known types: .*TEST_NOOP"), \
            sessions() as session:
        enqueue(session, "NOPE", {})
    assert count(sessions) == 0


def test_unknown_type_is_accepted_when_forced(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        done = enqueue(session, "NOPE", {}, force=True)
    assert fetch(sessions, done.id).action_type == "NOPE"


def test_payload_breaking_the_declared_schema_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidPayload, match=r"TEST_STRICT.*'extra'"), sessions() as session:
        enqueue(session, "TEST_STRICT", {"n": 1, "extra": True})


def test_the_type_spec_supplies_max_attempts(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        done = enqueue(session, "TEST_STRICT", {"n": 1})
    assert fetch(sessions, done.id).max_attempts == 4


def test_naive_not_before_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"), sessions() as session:
        enqueue(session, "TEST_NOOP", {}, not_before=datetime(2030, 1, 1))


def test_not_before_keeps_its_instant_in_utc(sessions: sessionmaker[Session]) -> None:
    later = datetime(2030, 1, 1, 12, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Kolkata"))
    with sessions() as session, session.begin():
        done = enqueue(session, "TEST_NOOP", {}, not_before=later)
    assert fetch(sessions, done.id).not_before == datetime(2030, 1, 1, 12, tzinfo=UTC)


def test_enqueue_rolls_back_with_the_callers_transaction(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        session.begin()
        enqueue(session, "TEST_NOOP", {})
        session.rollback()
    assert count(sessions) == 0


def test_enqueue_inside_a_savepoint_rolls_back_with_the_outer_transaction(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        session.begin()
        with session.begin_nested():
            enqueue(session, "TEST_NOOP", {})
        session.rollback()
    assert count(sessions) == 0


def test_enqueue_commits_with_the_callers_own_writes(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.execute(text("INSERT INTO test_actions_runs (action_id, attempt, tag) "
                             "VALUES (0, 0, 'app-write')"))
        enqueue(session, "TEST_NOOP", {})
    with sessions() as session:
        assert session.scalar(text("SELECT count(*) FROM test_actions_runs")) == 1
    assert count(sessions) == 1


def test_bulk_enqueue_returns_results_in_input_order(sessions: sessionmaker[Session]) -> None:
    items = [NewAction("TEST_NOOP", {"i": i}, idempotency_key=f"k{i}") for i in range(2500)]
    with sessions() as session, session.begin():
        done = enqueue_many(session, items)
    assert [d.idempotency_key for d in done] == [f"k{i}" for i in range(2500)]
    assert all(d.created for d in done)
    assert count(sessions) == 2500


def test_bulk_enqueue_reports_existing_keys_as_uncreated(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        old = enqueue(session, "TEST_NOOP", {"i": 1}, idempotency_key="k1")
    items = [NewAction("TEST_NOOP", {"i": i}, idempotency_key=f"k{i}") for i in range(3)]
    with sessions() as session, session.begin():
        done = enqueue_many(session, items)
    assert [d.created for d in done] == [True, False, True]
    assert done[1].id == old.id


def test_bulk_enqueue_folds_repeated_keys_within_one_call(sessions: sessionmaker[Session]) -> None:
    items = [NewAction("TEST_NOOP", {}, idempotency_key="same") for _ in range(3)]
    with sessions() as session, session.begin():
        done = enqueue_many(session, items)
    assert len({d.id for d in done}) == 1
    assert count(sessions) == 1


def test_bulk_enqueue_is_all_or_nothing_on_a_conflict(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        enqueue(session, "TEST_NOOP", {"v": 1}, idempotency_key="taken")
    items = [NewAction("TEST_NOOP", {}, idempotency_key="fresh"),
             NewAction("TEST_NOOP", {"v": 2}, idempotency_key="taken")]
    with pytest.raises(IdempotencyConflict), sessions() as session, session.begin():
        enqueue_many(session, items)
    assert count(sessions) == 1


def test_not_before_in_the_future_is_kept(sessions: sessionmaker[Session]) -> None:
    when = datetime.now(UTC) + timedelta(hours=1)
    with sessions() as session, session.begin():
        done = enqueue(session, "TEST_NOOP", {}, not_before=when, priority=5, max_attempts=2,
                       proof_mode=True)
    action = fetch(sessions, done.id)
    assert (action.not_before, action.priority, action.max_attempts, action.proof_mode) == (
        when, 5, 2, True)


def test_a_bulk_enqueue_of_ten_thousand_gets_one_id_each(
    sessions: sessionmaker[Session],
) -> None:
    n = 10_000
    items = [NewAction("TEST_NOOP", {"i": i}, priority=i % 3) for i in range(n)]
    with sessions() as session, session.begin():
        done = enqueue_many(session, items)
    assert len({d.id for d in done}) == n == count(sessions)


def test_zero_max_attempts_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(InvalidPayload, match="max_attempts must be at least 1, not 0"), \
            sessions() as session:
        enqueue(session, "TEST_NOOP", {}, max_attempts=0)
