"""Code written against the original AOL, run through ``aol_core.compat`` only: what its tests,
its API routes and its scheduler did, and what they may rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from aol_core.compat import (
    ActionQueue,
    AOLAction,
    AOLControlFlags,
    AOLDaemon,
    AOLExecutionLog,
    DequeueRemoved,
)
from aol_core.errors import InvalidPayload, InvalidTransition, UnknownActionType


@pytest.fixture
def plain_sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions as the original's callers made them: ``sessionmaker(bind=engine)``."""
    return sessionmaker(bind=engine)


def stored(sessions: sessionmaker[Session], action_id: int) -> AOLAction:
    with sessions() as session:
        action = session.get(AOLAction, action_id)
        assert action is not None
        return action


def enqueue_one(sessions: sessionmaker[Session], **options: Any) -> int:
    with sessions() as session:
        return ActionQueue.enqueue_action(session, "TEST_NOOP", {}, **options).id


# --- enqueue ----------------------------------------------------------------------------------


def test_enqueue_action_commits_without_the_caller_committing(
    plain_sessions: sessionmaker[Session],
) -> None:
    session = plain_sessions()
    action = ActionQueue.enqueue_action(session, "TEST_NOOP", {"n": 1}, "route-key")
    session.close()
    assert stored(plain_sessions, action.id).idempotency_key == "route-key"


def test_enqueue_action_with_commit_false_rolls_back_with_the_caller(
    plain_sessions: sessionmaker[Session],
) -> None:
    with plain_sessions() as session:
        action_id = ActionQueue.enqueue_action(session, "TEST_NOOP", {}, commit=False).id
        session.rollback()
    with plain_sessions() as session:
        assert session.get(AOLAction, action_id) is None


def test_a_known_key_returns_the_existing_action(plain_sessions: sessionmaker[Session]) -> None:
    first = enqueue_one(plain_sessions, idempotency_key="once")
    assert enqueue_one(plain_sessions, idempotency_key="once") == first


def test_a_naive_not_before_means_utc(plain_sessions: sessionmaker[Session]) -> None:
    action_id = enqueue_one(plain_sessions, not_before=datetime(2030, 1, 1, 9, 30))
    assert stored(plain_sessions, action_id).not_before_utc == datetime(2030, 1, 1, 9, 30,
                                                                       tzinfo=UTC)


def test_an_undeclared_type_is_refused_unless_forced(
    plain_sessions: sessionmaker[Session],
) -> None:
    with plain_sessions() as session, pytest.raises(UnknownActionType, match="force"):
        ActionQueue.enqueue_action(session, "FETCH_LEADS", {})
    with plain_sessions() as session:
        action = ActionQueue.enqueue_action(session, "FETCH_LEADS", {}, force=True,
                                            max_attempts=2)
    assert (stored(plain_sessions, action.id).action_type, action.max_attempts) == (
        "FETCH_LEADS", 2)


def test_the_models_read_with_the_original_names(plain_sessions: sessionmaker[Session]) -> None:
    action_id = enqueue_one(plain_sessions, idempotency_key="named")
    with plain_sessions() as session:
        ActionQueue.log_execution(session, action_id, "INFO", "hello", "proof.txt", "ab" * 32)
    with plain_sessions() as session:
        action = session.scalars(
            select(AOLAction).where(AOLAction.idempotency_key == "named")).one()
        entry = session.scalars(select(AOLExecutionLog)
                                .where(AOLExecutionLog.action_id == action_id)).one()
        flags = session.scalars(select(AOLControlFlags)).one()
    assert action.to_dict() == {
        "id": action_id, "idempotency_key": "named", "action_type": "TEST_NOOP",
        "payload_json": "{}", "status": "PENDING", "attempts": 0, "last_error": None,
        "not_before_utc": action.not_before_utc.isoformat(),
        "created_at_utc": action.created_at_utc.isoformat(),
    }
    assert (entry.to_dict()["message"], entry.artifact_ref, entry.ts_utc.tzinfo) == (
        "hello", "proof.txt", UTC)
    assert flags.to_dict()["paused"] is False


# --- log and mark -----------------------------------------------------------------------------


def test_log_execution_accepts_the_original_level_success(
    plain_sessions: sessionmaker[Session],
) -> None:
    action_id = enqueue_one(plain_sessions)
    with plain_sessions() as session:
        ActionQueue.log_execution(session, action_id, "SUCCESS", "Updated 3 tasks")
    with plain_sessions() as session:
        entry = session.scalars(select(AOLExecutionLog)
                                .where(AOLExecutionLog.action_id == action_id)).one()
    assert (entry.level, entry.message) == ("INFO", "Updated 3 tasks")


def test_log_execution_keeps_an_artifact_ref_too_long_for_aol_whole_in_the_message(
    plain_sessions: sessionmaker[Session],
) -> None:
    action_id = enqueue_one(plain_sessions)
    ref = "s3://bucket/" + "x" * 600  # the original's column was unbounded text
    with plain_sessions() as session:
        ActionQueue.log_execution(session, action_id, "INFO", "uploaded", ref)
    with plain_sessions() as session:
        entry = session.scalars(select(AOLExecutionLog)
                                .where(AOLExecutionLog.action_id == action_id)).one()
    assert (entry.message, entry.artifact_ref) == (f"uploaded [artifact_ref: {ref}]", None)


def test_mark_success_finishes_a_pending_action_with_its_notes(
    plain_sessions: sessionmaker[Session],
) -> None:
    action_id = enqueue_one(plain_sessions)
    with plain_sessions() as session:
        ActionQueue.mark_success(session, action_id, "Updated 3 tasks")
    assert stored(plain_sessions, action_id).status == "SUCCESS"


def test_a_finished_action_cannot_be_marked_again(
    plain_sessions: sessionmaker[Session],
) -> None:
    action_id = enqueue_one(plain_sessions)
    with plain_sessions() as session:
        ActionQueue.mark_failed(session, action_id, "Test error")
    with plain_sessions() as session, pytest.raises(InvalidTransition, match="is FAILED"):
        ActionQueue.mark_success(session, action_id)
    with plain_sessions() as session, pytest.raises(InvalidTransition, match="is FAILED"):
        ActionQueue.mark_retry(session, action_id, "again")
    assert (stored(plain_sessions, action_id).status,
            stored(plain_sessions, action_id).last_error) == ("FAILED", "Test error")


def test_mark_retry_delays_the_action_then_moves_it_to_dlq_at_max_retries(
    plain_sessions: sessionmaker[Session],
) -> None:
    action_id = enqueue_one(plain_sessions)
    with plain_sessions() as session:
        before = datetime.now(UTC)
        ActionQueue.mark_retry(session, action_id, "Temporary error")
    action = stored(plain_sessions, action_id)
    assert (action.status, action.attempts, action.last_error) == ("RETRY", 1, "Temporary error")
    assert action.not_before_utc >= before + timedelta(seconds=ActionQueue.RETRY_DELAY_SECONDS)
    for _ in range(ActionQueue.MAX_RETRIES - 1):
        with plain_sessions() as session:
            ActionQueue.mark_retry(session, action_id, "Error")
    assert (stored(plain_sessions, action_id).status,
            stored(plain_sessions, action_id).attempts) == ("DLQ", ActionQueue.MAX_RETRIES)


def test_mark_helpers_ignore_an_unknown_id_as_the_original_did(
    plain_sessions: sessionmaker[Session],
) -> None:
    with plain_sessions() as session:
        assert ActionQueue.mark_success(session, 999_999) is None
        assert ActionQueue.mark_failed(session, 999_999, "gone") is None
        assert ActionQueue.mark_retry(session, 999_999, "gone") is None
        ActionQueue.log_execution(session, 999_999, "ERROR", "gone")
        assert session.scalars(select(AOLExecutionLog)).all() == []


def test_dequeue_next_explains_that_workers_claim_actions(
    plain_sessions: sessionmaker[Session],
) -> None:
    with plain_sessions() as session, pytest.raises(DequeueRemoved, match="aol worker"):
        ActionQueue.dequeue_next(session, max_actions=1)


# --- the daemon -------------------------------------------------------------------------------


def test_the_daemon_runs_what_is_due_in_two_ticks_and_exits_0(
    db_url: str, plain_sessions: sessionmaker[Session],
) -> None:
    due = enqueue_one(plain_sessions)
    later = enqueue_one(plain_sessions, not_before=datetime.utcnow() + timedelta(hours=1))
    assert AOLDaemon(db_url).run(max_ticks=2) == 0
    assert (stored(plain_sessions, due).status, stored(plain_sessions, later).status) == (
        "SUCCESS", "PENDING")


def test_the_daemon_in_proof_mode_runs_actions_in_proof_mode(
    db_url: str, plain_sessions: sessionmaker[Session],
) -> None:
    with plain_sessions() as session:
        action_id = ActionQueue.enqueue_action(session, "TEST_ARTIFACT", {}).id
    assert AOLDaemon(db_url, proof_mode=True).run(max_ticks=1) == 0
    assert stored(plain_sessions, action_id).result["proof_mode"] is True


def test_the_daemon_stops_at_the_kill_switch_with_exit_code_0(
    db_url: str, plain_sessions: sessionmaker[Session],
) -> None:
    action_id = enqueue_one(plain_sessions)
    with plain_sessions() as session:
        session.scalars(select(AOLControlFlags)).one().killed = True
        session.commit()
    assert AOLDaemon(db_url).run() == 0
    assert stored(plain_sessions, action_id).status == "PENDING"


def test_the_daemon_without_a_schema_exits_1(aol_sqlite_url: str) -> None:
    assert AOLDaemon(aol_sqlite_url).run(max_ticks=1) == 1


# --- callers as the original application wrote them ----------------------------------------


def post_social_route(session: Session, body: dict[str, Any]) -> dict[str, Any]:
    """An API route of the original: enqueue and answer, never committing itself."""
    action = ActionQueue.enqueue_action(
        session, "TEST_STRICT", {"n": body["n"]}, idempotency_key=f"post-{body['request_id']}"
    )
    return {"queued": action.to_dict()}


def test_an_api_route_caller_stores_its_action_and_a_repeated_request_returns_it(
    plain_sessions: sessionmaker[Session],
) -> None:
    with plain_sessions() as session:
        first = post_social_route(session, {"n": 7, "request_id": "r1"})
    with plain_sessions() as session:
        again = post_social_route(session, {"n": 7, "request_id": "r1"})
    assert again["queued"]["id"] == first["queued"]["id"]
    assert stored(plain_sessions, first["queued"]["id"]).payload_json == '{"n": 7}'


def schedule_ticks(session: Session, payloads: list[dict[str, Any]]) -> list[str]:
    """A scheduler of the original: enqueue each, roll back and go on after a failure."""
    problems = []
    for number, payload in enumerate(payloads):
        try:
            ActionQueue.enqueue_action(session, "TEST_STRICT", payload,
                                       idempotency_key=f"tick-{number}",
                                       not_before=datetime.utcnow())
        except InvalidPayload as exc:
            session.rollback()
            problems.append(str(exc))
    return problems


def test_a_scheduler_caller_keeps_the_actions_enqueued_before_a_failure(
    plain_sessions: sessionmaker[Session],
) -> None:
    with plain_sessions() as session:
        problems = schedule_ticks(session, [{"n": 1}, {"n": "two"}, {"n": 3}])
    with plain_sessions() as session:
        keys = session.scalars(select(AOLAction.idempotency_key)
                               .order_by(AOLAction.idempotency_key)).all()
    assert (keys, len(problems)) == (["tick-0", "tick-2"], 1)
