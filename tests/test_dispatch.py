"""Running one action: transactions, outcome classification, logs, artifacts and fencing."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update

from aol_core import queue
from aol_core.drivers import Claim, driver_for
from aol_core.models import Action, Status
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow


def runs(harness: ActionHarness, action_id: int | None = None) -> int:
    sql = "SELECT count(*) FROM test_actions_runs"
    with harness.session() as session:
        if action_id is None:
            return session.scalar(text(sql)) or 0
        return session.scalar(text(sql + " WHERE action_id = :a"), {"a": action_id}) or 0


def test_success_commits_handler_writes_with_the_outcome(harness: ActionHarness) -> None:
    action = harness.run("TEST_RECORD", {"tag": "t"})
    assert action.status == Status.SUCCESS
    assert action.result == {"key": action.idempotency_key, "attempt": 1}
    assert action.finished_at is not None and action.lease_owner is None
    assert runs(harness, action.id) == 1


def test_handler_receives_the_idempotency_key_in_its_payload(harness: ActionHarness) -> None:
    action = harness.run("TEST_RECORD", {}, idempotency_key="order-17")
    assert action.result["key"] == "order-17"


def test_failure_rolls_back_handler_writes(harness: ActionHarness) -> None:
    action = harness.run("TEST_FAIL", {"write_first": True})
    assert action.status == Status.RETRY
    assert runs(harness, action.id) == 0


def test_failure_logs_survive_the_rollback(harness: ActionHarness) -> None:
    action = harness.run("TEST_FAIL", {"mode": "error"})
    entries = [(e.level, e.message.splitlines()[0]) for e in harness.logs(action.id)]
    assert entries[0] == ("INFO", "about to fail")
    assert entries[1][0] == "ERROR"
    assert "RuntimeError: boom on attempt 1" in entries[1][1]


def test_a_plain_exception_is_retried_with_backoff(harness: ActionHarness) -> None:
    harness.dispatcher.settings = harness.settings.with_overrides(retry_base_seconds=60)
    before = utcnow()
    action = harness.run("TEST_FAIL", {})
    assert action.status == Status.RETRY
    assert action.last_error == "RuntimeError: boom on attempt 1"
    # attempt 1 waits between half and all of the base delay (jitter)
    assert 29 <= (action.not_before - before).total_seconds() <= 62


def test_retryable_error_delay_overrides_the_backoff(harness: ActionHarness) -> None:
    before = utcnow()
    action = harness.run("TEST_FAIL", {"mode": "retryable", "delay": 600})
    assert action.status == Status.RETRY
    assert 599 <= (action.not_before - before).total_seconds() <= 602


def test_permanent_error_fails_at_once_with_one_error_log(harness: ActionHarness) -> None:
    action = harness.run("TEST_FAIL", {"mode": "permanent"}, max_attempts=5)
    assert (action.status, action.attempts) == (Status.FAILED, 1)
    assert [e.level for e in harness.logs(action.id)].count("ERROR") == 1
    assert harness.run_due() == []


def test_attempts_used_up_move_the_action_to_dlq(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_FAIL", {}, max_attempts=3)
    for _ in range(5):
        harness.run_due()
    action = harness.action(action_id)
    assert (action.status, action.attempts) == (Status.DLQ, 3)
    assert "moved to DLQ" in harness.logs(action_id)[-1].message


def test_a_retry_that_succeeds_ends_in_success(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_FAIL", {"times": 2})
    for _ in range(3):
        harness.run_due()
    action = harness.action(action_id)
    assert (action.status, action.attempts, action.result) == (
        Status.SUCCESS, 3, {"recovered_on": 3})


def test_a_handler_may_not_commit_on_its_own(harness: ActionHarness) -> None:
    action = harness.run("TEST_COMMIT", {})
    assert action.status == Status.FAILED
    assert "handlers must not commit" in (action.last_error or "")
    assert runs(harness, action.id) == 0


def test_a_handler_may_not_roll_back_on_its_own(harness: ActionHarness) -> None:
    action = harness.run("TEST_COMMIT", {"rollback": True})
    assert action.status == Status.FAILED
    assert "handlers must not roll back" in (action.last_error or "")
    assert runs(harness, action.id) == 0


def test_a_handler_rolling_back_in_a_batch_fails_alone(harness: ActionHarness) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}), ("TEST_COMMIT", {"rollback": True}))
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert outcomes == {claims[0].id: Status.SUCCESS, claims[1].id: Status.FAILED}
    assert (runs(harness, claims[0].id), runs(harness, claims[1].id)) == (1, 0)


def test_a_handler_may_roll_back_its_own_savepoint(harness: ActionHarness) -> None:
    action = harness.run("TEST_SAVEPOINT", {})
    assert action.status == Status.SUCCESS, action.last_error
    with harness.session() as session:
        tags = session.scalars(text("SELECT tag FROM test_actions_runs")).all()
    assert tags == ["kept"]


def test_a_result_json_cannot_hold_fails_permanently(harness: ActionHarness) -> None:
    action = harness.run("TEST_BAD_RESULT", {})
    assert action.status == Status.FAILED
    assert "AOL cannot store it" in (action.last_error or "")


def test_a_payload_breaking_the_schema_at_dispatch_fails_permanently(
    harness: ActionHarness,
) -> None:
    action_id = harness.enqueue("TEST_STRICT", {"n": 1})
    with harness.session() as session:
        session.execute(update(Action).where(Action.id == action_id).values(payload={"n": "x"}))
    harness.run_due()
    action = harness.action(action_id)
    assert (action.status, action.attempts) == (Status.FAILED, 1)
    assert "invalid payload for TEST_STRICT at n" in (action.last_error or "")


def test_enqueue_from_a_handler_commits_with_its_success(harness: ActionHarness) -> None:
    harness.run("TEST_ENQUEUE", {"child_key": "child"})
    with harness.session() as session:
        assert session.scalar(select(func.count()).where(Action.idempotency_key == "child")) == 1


def test_enqueue_from_a_failing_handler_rolls_back(harness: ActionHarness) -> None:
    harness.run("TEST_ENQUEUE", {"child_key": "child", "then_fail": True})
    with harness.session() as session:
        assert session.scalar(select(func.count()).where(Action.idempotency_key == "child")) == 0


def test_artifacts_are_stored_with_their_sha256(harness: ActionHarness) -> None:
    action = harness.run("TEST_ARTIFACT", {"text": "proof body"})
    (artifact,) = harness.artifacts(action.id)
    digest = hashlib.sha256(b"proof body").hexdigest()
    assert (artifact.name, artifact.content, artifact.sha256) == ("proof.txt", b"proof body",
                                                                  digest)
    assert action.result["uri"] == f"aol://artifacts/{action.id}/proof.txt"
    logged = [e for e in harness.logs(action.id) if e.artifact_ref]
    assert [(e.artifact_ref, e.artifact_sha256) for e in logged] == [(action.result["uri"], digest)]


def test_a_retry_keeps_one_copy_of_an_artifact(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_ARTIFACT", {"fail_times": 2})
    for _ in range(3):
        harness.run_due()
    assert harness.action(action_id).status == Status.SUCCESS
    assert len(harness.artifacts(action_id)) == 1


def test_proof_mode_reaches_the_handler(harness: ActionHarness) -> None:
    assert harness.run("TEST_ARTIFACT", {}, proof_mode=True).result["proof_mode"] is True
    assert harness.run("TEST_ARTIFACT", {}).result["proof_mode"] is False


def test_an_outcome_with_a_stale_fencing_token_is_refused(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_RECORD", {"tag": "stale"})
    (stale,) = _claim(harness)
    # another worker took the action over: a new claim means a new token
    with harness.session() as session:
        session.execute(update(Action).where(Action.id == action_id).values(
            fencing_token=Action.fencing_token + 1))
    outcome = harness.dispatcher.run(stale, proof_mode=False)
    assert outcome.status is None
    assert runs(harness, action_id) == 0
    action = harness.action(action_id)
    assert action.status == Status.RUNNING
    assert any("lost its lease" in e.message for e in harness.logs(action_id))


def _claim(harness: ActionHarness) -> list[Claim]:
    return driver_for(harness.engine).claim(
        harness.engine, worker="w", action_types=sorted(harness.registry.routes), limit=10,
        lease_seconds=30, now=utcnow())


# --- several actions to a transaction ------------------------------------------------------


def _claim_batch(harness: ActionHarness, *payloads: tuple[str, dict[str, object]]) -> list[Claim]:
    for action_type, payload in payloads:
        harness.enqueue(action_type, payload)
    return _claim(harness)


def test_a_batch_commits_each_actions_writes_with_its_success(harness: ActionHarness) -> None:
    claims = _claim_batch(harness, *[("TEST_RECORD", {"n": n}) for n in range(5)])
    commits: list[None] = []
    event.listen(harness.engine, "commit", lambda _conn: commits.append(None))
    outcomes = harness.dispatcher.run_batch([(c, False) for c in claims])
    assert len(commits) == 1
    assert [o.status for o in outcomes] == [Status.SUCCESS] * 5
    assert runs(harness) == 5
    for claim in claims:
        action = harness.action(claim.id)
        assert (action.status, action.result["attempt"]) == (Status.SUCCESS, 1)
        assert "succeeded" in harness.logs(claim.id)[-1].message


def test_a_failure_in_a_batch_rolls_back_only_its_own_writes(harness: ActionHarness) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}), ("TEST_FAIL", {"write_first": True}),
                          ("TEST_RECORD", {}))
    commits = _count_commits(harness)
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert len(commits) == 1
    assert [outcomes[c.id] for c in claims] == [Status.SUCCESS, Status.RETRY, Status.SUCCESS]
    assert runs(harness, claims[1].id) == 0
    assert runs(harness) == 2
    assert harness.logs(claims[1].id)[-1].level == "ERROR"


def test_a_claim_that_lost_its_lease_is_left_out_of_its_batch(
    harness: ActionHarness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}), ("TEST_RECORD", {}))
    with harness.session() as session:
        session.execute(update(Action).where(Action.id == claims[0].id).values(
            fencing_token=Action.fencing_token + 1))
    called = _count_calls(harness, monkeypatch, "TEST_RECORD")
    commits = _count_commits(harness)
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert outcomes == {claims[0].id: None, claims[1].id: Status.SUCCESS}
    assert called == [claims[1].id]
    assert len(commits) == 1
    assert (runs(harness, claims[0].id), runs(harness, claims[1].id)) == (0, 1)
    assert "lost its lease" in harness.logs(claims[0].id)[-1].message


def test_a_neighbours_failure_never_runs_a_handler_again(
    harness: ActionHarness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}), ("TEST_FAIL", {"write_first": True}),
                          ("TEST_COMMIT", {}), ("TEST_COMMIT", {"rollback": True}),
                          ("TEST_RECORD", {}))
    called = _count_calls(harness, monkeypatch, "TEST_RECORD", "TEST_FAIL", "TEST_COMMIT")
    commits = _count_commits(harness)
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert sorted(called) == sorted(c.id for c in claims)
    assert len(commits) == 1
    assert [outcomes[c.id] for c in claims] == [Status.SUCCESS, Status.RETRY, Status.FAILED,
                                                Status.FAILED, Status.SUCCESS]
    assert [runs(harness, c.id) for c in claims] == [1, 0, 0, 0, 1]


def test_a_handler_emptying_its_session_keeps_its_neighbours_writes(
    harness: ActionHarness,
) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {"orm": True}),
                          ("TEST_SQL", {"expunge_all": True}), ("TEST_RECORD", {"orm": True}))
    outcomes = harness.dispatcher.run_batch([(c, False) for c in claims])
    assert [o.status for o in outcomes] == [Status.SUCCESS] * 3
    assert [runs(harness, c.id) for c in claims] == [1, 0, 1]


def test_a_shared_transaction_that_cannot_settle_runs_its_actions_again_one_by_one(
    harness: ActionHarness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}), ("TEST_RECORD", {}))
    monkeypatch.setattr(queue, "settle_successes", lambda *_args: False)
    called = _count_calls(harness, monkeypatch, "TEST_RECORD")
    outcomes = harness.dispatcher.run_batch([(c, False) for c in claims])
    assert [o.status for o in outcomes] == [Status.SUCCESS] * 2
    assert sorted(called) == sorted([c.id for c in claims] * 2)  # delivery: at least once
    assert [runs(harness, c.id) for c in claims] == [1, 1]  # the shared writes rolled back


def _count_calls(harness: ActionHarness, monkeypatch: pytest.MonkeyPatch,
                 *action_types: str) -> list[int]:
    """Record the action id of every call of these types' handlers."""
    called: list[int] = []
    for action_type in action_types:
        route = harness.registry.routes[action_type]

        def counting(*args: Any, _handler: Any = route.handler) -> Any:
            called.append(args[-1].action_id)
            return _handler(*args)

        monkeypatch.setitem(harness.registry.routes, action_type,
                            dataclasses.replace(route, handler=counting))
    return called


def _count_commits(harness: ActionHarness) -> list[None]:
    commits: list[None] = []
    event.listen(harness.engine, "commit", lambda _conn: commits.append(None))
    return commits


def test_a_handler_committing_in_a_batch_fails_alone(harness: ActionHarness) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}), ("TEST_COMMIT", {}))
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert outcomes == {claims[0].id: Status.SUCCESS, claims[1].id: Status.FAILED}
    assert (runs(harness, claims[0].id), runs(harness, claims[1].id)) == (1, 0)


def test_a_failure_without_writes_keeps_its_batch_in_one_transaction(
    harness: ActionHarness,
) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}), ("TEST_FAIL", {}), ("TEST_RECORD", {}))
    commits: list[None] = []
    event.listen(harness.engine, "commit", lambda _conn: commits.append(None))
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert len(commits) == 1
    assert [outcomes[c.id] for c in claims] == [Status.SUCCESS, Status.RETRY, Status.SUCCESS]
    assert runs(harness) == 2


def test_an_enqueue_by_a_failing_handler_in_a_batch_rolls_back(harness: ActionHarness) -> None:
    claims = _claim_batch(harness, ("TEST_RECORD", {}),
                          ("TEST_ENQUEUE", {"child_key": "child", "then_fail": True}))
    outcomes = {o.claim.id: o.status for o in harness.dispatcher.run_batch(
        [(c, False) for c in claims])}
    assert outcomes == {claims[0].id: Status.SUCCESS, claims[1].id: Status.RETRY}
    with harness.session() as session:
        assert session.scalar(select(func.count()).where(Action.idempotency_key == "child")) == 0


# --- outcomes refused by fencing ------------------------------------------------------------


def test_a_late_attempt_never_replaces_the_winners_artifact(harness: ActionHarness) -> None:
    action_id = harness.enqueue("TEST_ARTIFACT", {"per_attempt": True, "fail_times": 1})
    (late,) = _claim(harness)
    # its lease runs out; another worker takes the action over and succeeds
    with harness.session() as session:
        session.execute(update(Action).where(Action.id == action_id).values(
            status=Status.RETRY.value, lease_owner=None, lease_expires_at=None))
    (winner,) = _claim(harness)
    assert harness.dispatcher.run(winner, proof_mode=False).status == Status.SUCCESS
    # the late attempt fails after recording the same artifact: its failure is refused
    assert harness.dispatcher.run(late, proof_mode=False).status is None
    (artifact,) = harness.artifacts(action_id)
    assert artifact.content == b"proof (attempt 2)"
    assert harness.action(action_id).status == Status.SUCCESS


def test_cancelling_a_running_action_refuses_its_outcome_and_rolls_back_its_writes(
    harness: ActionHarness,
) -> None:
    action_id = harness.enqueue("TEST_RECORD", {})
    (claim,) = _claim(harness)
    with harness.session() as session:
        queue.cancel_action(session, action_id)
    assert harness.dispatcher.run(claim, proof_mode=False).status is None
    assert runs(harness, action_id) == 0
    assert harness.action(action_id).status == Status.CANCELLED
