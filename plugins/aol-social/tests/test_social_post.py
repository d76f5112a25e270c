"""POST_SOCIAL against a live HTTP endpoint, on SQLite and PostgreSQL (the aol_harness fixture)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any, ClassVar

import pytest
from aol_core import InvalidPayload, Status
from aol_core.models import Action
from aol_core.testing import ActionHarness, HandlerContract
from aol_core.timeutil import utcnow

from aol_social.publisher import MAX_RETRY_AFTER, retry_after
from aol_social.testing import FakeEndpoint, Reply


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON column's value (an action's result, an audit row's before/after) as a dict."""
    assert isinstance(value, dict), value
    return value


POST = {"social_platform": "mastodon", "content": "Hello from AOL", "audience": "followers"}


class TestPostSocialContract(HandlerContract):
    action_type = "POST_SOCIAL"
    valid_payload: ClassVar[dict[str, Any]] = POST
    invalid_payload: ClassVar[dict[str, Any]] = {"social_platform": "myspace", "content": "Hello"}


# --- real mode ------------------------------------------------------------------------------


def test_real_mode_posts_the_payload_as_json_and_succeeds(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.SUCCESS, action.last_error
    assert as_dict(action.result)["posted"] is True
    assert as_dict(action.result)["status"] == 200
    assert as_dict(action.result)["response"] == {"id": "post-1"}
    [request] = social_endpoint.received
    assert request.path == "/hooks/social"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json() == {
        "action_id": action.id,
        "idempotency_key": action.idempotency_key,
        "social_platform": "mastodon",
        "content": "Hello from AOL",
        "audience": "followers",
    }


def test_real_mode_sends_the_idempotency_key_header(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    aol_harness.run("POST_SOCIAL", POST, idempotency_key="spring-launch-post-1")

    [request] = social_endpoint.received
    assert request.headers["Idempotency-Key"] == "spring-launch-post-1"


def test_real_mode_sends_the_token_as_bearer_when_configured(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_TOKEN", "s3cret")

    aol_harness.run("POST_SOCIAL", POST)

    [request] = social_endpoint.received
    assert request.headers["Authorization"] == "Bearer s3cret"


def test_a_text_response_is_kept_as_an_excerpt(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(202, b"queued " + b"x" * 2000, {"Content-Type": "text/plain"}))

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.SUCCESS, action.last_error
    assert as_dict(action.result)["status"] == 202
    assert as_dict(action.result)["response"].startswith("queued xxx")
    assert len(as_dict(action.result)["response"]) <= 501


def test_a_400_fails_permanently_after_one_attempt(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(400, b'{"error": "content rejected"}'))

    action = aol_harness.run("POST_SOCIAL", POST)
    aol_harness.run_due()

    action = aol_harness.action(action.id)
    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert "HTTP 400" in (action.last_error or "")
    assert "content rejected" in (action.last_error or "")
    assert len(social_endpoint.received) == 1


def test_a_503_is_retried_and_succeeds_on_the_next_run(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(503, b"maintenance"))

    first = aol_harness.run("POST_SOCIAL", POST)
    assert first.status == Status.RETRY
    assert "HTTP 503" in (first.last_error or "")

    aol_harness.run_due()
    action = aol_harness.action(first.id)
    assert action.status == Status.SUCCESS, action.last_error
    assert action.attempts == 2
    one, two = social_endpoint.received
    assert one.body == two.body
    assert one.headers["Idempotency-Key"] == two.headers["Idempotency-Key"]


def test_a_429_waits_as_long_as_retry_after_says(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(429, b"slow down", {"Retry-After": "120"}))

    before = utcnow()
    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.RETRY
    assert before + timedelta(seconds=119) <= action.not_before
    assert action.not_before <= utcnow() + timedelta(seconds=121)


def test_an_unreachable_endpoint_is_retried(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    social_endpoint.__exit__()  # nothing listens on its port any more
    monkeypatch.setenv("AOL_SOCIAL_ENDPOINT", social_endpoint.url)

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.RETRY
    assert "could not reach" in (action.last_error or "")


def test_a_slow_endpoint_times_out_and_is_retried(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_TIMEOUT", "0.2")
    social_endpoint.reply(Reply(delay=1.5))

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.RETRY
    assert "could not reach" in (action.last_error or "")
    assert "timed out" in (action.last_error or "")


def test_a_redirect_is_not_followed_and_fails_permanently(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(302, b"", {"Location": "http://elsewhere.invalid/hook"}))

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.FAILED
    assert "redirect" in (action.last_error or "")
    assert len(social_endpoint.received) == 1


def test_a_missing_endpoint_fails_permanently_and_says_what_to_set(
    aol_harness: ActionHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AOL_SOCIAL_ENDPOINT", raising=False)

    action = aol_harness.run("POST_SOCIAL", POST, max_attempts=5)

    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert "AOL_SOCIAL_ENDPOINT is not set" in (action.last_error or "")
    assert "proof mode" in (action.last_error or "")


def test_a_retry_keeps_one_copy_of_the_request_artifact(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(503, b"busy"))
    action = aol_harness.run("POST_SOCIAL", POST)
    assert [a.name for a in aol_harness.artifacts(action.id)] == ["request.json"]

    aol_harness.run_due()

    assert aol_harness.action(action.id).attempts == 2
    [artifact] = aol_harness.artifacts(action.id)
    assert artifact.content == social_endpoint.received[-1].body
    assert artifact.sha256 == hashlib.sha256(artifact.content).hexdigest()


# --- proof mode -----------------------------------------------------------------------------


def test_proof_mode_sends_no_request_and_stores_the_post_as_an_artifact(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    action = aol_harness.run("POST_SOCIAL", POST, proof_mode=True, idempotency_key="proof-1")

    assert action.status == Status.SUCCESS, action.last_error
    assert social_endpoint.received == []
    [artifact] = aol_harness.artifacts(action.id)
    assert artifact.name == "post.txt"
    assert artifact.media_type == "text/plain"
    assert artifact.sha256 == hashlib.sha256(artifact.content).hexdigest()
    text = artifact.content.decode()
    for fragment in (
        "no real post sent",
        f"action id: {action.id}",
        "idempotency key: proof-1",
        "platform: mastodon",
        "audience: followers",
        "Hello from AOL",
    ):
        assert fragment in text
    assert action.result == {
        "proof": True,
        "artifact": f"aol://artifacts/{action.id}/post.txt",
        "sha256": artifact.sha256,
    }


def test_proof_mode_needs_no_endpoint(
    aol_harness: ActionHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AOL_SOCIAL_ENDPOINT", raising=False)

    action = aol_harness.run("POST_SOCIAL", POST, proof_mode=True)

    assert action.status == Status.SUCCESS, action.last_error


def test_a_second_proof_attempt_replaces_the_artifact_instead_of_adding_one(
    aol_harness: ActionHarness,
) -> None:
    action = aol_harness.run("POST_SOCIAL", POST, proof_mode=True)
    [first] = aol_harness.artifacts(action.id)
    with aol_harness.session() as session:  # make the finished action due for another attempt
        row = session.get(Action, action.id)
        assert row is not None
        row.status, row.finished_at, row.not_before = Status.RETRY.value, None, utcnow()

    aol_harness.run_due(proof_mode=True)

    assert aol_harness.action(action.id).attempts == 2
    [second] = aol_harness.artifacts(action.id)
    assert (second.name, second.sha256) == (first.name, first.sha256)


def test_example_actions_succeed_in_proof_mode(aol_harness: ActionHarness) -> None:
    with aol_harness.session() as session:
        examples = [
            (t, dict(p))
            for t, p in aol_harness.registry.example_actions(session)
            if t == "POST_SOCIAL"
        ]
    assert len(examples) >= 2

    actions = [aol_harness.run(t, p, proof_mode=True) for t, p in examples]

    assert [a.status for a in actions] == [Status.SUCCESS] * len(examples)


# --- payload schema -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"social_platform": "myspace", "content": "hi"},
        {"social_platform": "twitter"},
        {"content": "hi"},
        {"social_platform": "twitter", "content": ""},
        {"social_platform": "twitter", "content": "   \n"},
        {"social_platform": "twitter", "content": "x" * 281},
        {"social_platform": "twitter", "content": "hi", "audience": 3},
        {"social_platform": "twitter", "content": "hi", "schedule": "tomorrow"},
    ],
    ids=[
        "unknown-platform",
        "no-content",
        "no-platform",
        "empty-content",
        "blank-content",
        "too-long-for-twitter",
        "audience-not-text",
        "unknown-field",
    ],
)
def test_the_schema_refuses_bad_payloads(
    aol_harness: ActionHarness, payload: dict[str, Any]
) -> None:
    with pytest.raises(InvalidPayload):
        aol_harness.enqueue("POST_SOCIAL", payload)


def test_the_content_limit_depends_on_the_platform(aol_harness: ActionHarness) -> None:
    aol_harness.enqueue("POST_SOCIAL", {"social_platform": "linkedin", "content": "x" * 281})


# --- Retry-After parsing (no database) ------------------------------------------------------


def _headers(value: str) -> Message:
    message = Message()
    message["Retry-After"] = value
    return message


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    assert retry_after(_headers("30"), now) == 30.0
    assert retry_after(_headers("Mon, 02 Mar 2026 12:01:00 GMT"), now) == 60.0
    assert retry_after(_headers("Mon, 02 Mar 2026 11:00:00 GMT"), now) == 0.0
    assert retry_after(_headers("soon"), now) is None
    assert retry_after(_headers("99999999"), now) == MAX_RETRY_AFTER
