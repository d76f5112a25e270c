"""POST_SOCIAL through the webhook, proof mode and the payload schema, on SQLite and PostgreSQL
(the aol_harness fixture)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from aol_core import InvalidPayload, Status
from aol_core.models import Action
from aol_core.testing import ActionHarness, HandlerContract
from aol_core.timeutil import utcnow

from aol_social.providers.base import MAX_SNOOZE, retry_after
from aol_social.testing import FakeEndpoint, FakeMastodon, Reply


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
    assert as_dict(action.result)["provider"] == "webhook"
    assert as_dict(action.result)["id"] == "post-1"
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
    assert request.header("Idempotency-Key") == "spring-launch-post-1"


def test_real_mode_sends_the_token_as_bearer_when_configured(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_TOKEN", "s3cret")

    aol_harness.run("POST_SOCIAL", POST)

    [request] = social_endpoint.received
    assert request.header("Authorization") == "Bearer s3cret"


def test_the_webhook_body_is_signed_with_hmac_sha256_when_a_secret_is_set(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_WEBHOOK_SECRET", "hook-secret")

    aol_harness.run("POST_SOCIAL", POST)

    [request] = social_endpoint.received
    expected = hmac.new(b"hook-secret", request.body, hashlib.sha256).hexdigest()
    assert request.header("X-AOL-Signature") == f"sha256={expected}"


def test_a_receiver_without_ids_is_recorded_by_its_status(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(202, b"queued " + b"x" * 2000, {"Content-Type": "text/plain"}))

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.SUCCESS, action.last_error
    assert as_dict(action.result)["id"] == "HTTP 202"


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
    assert one.header("Idempotency-Key") == two.header("Idempotency-Key")
    assert len(social_endpoint.posts) == 1


def test_a_429_snoozes_as_long_as_retry_after_says_without_using_an_attempt(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(429, b"slow down", {"Retry-After": "120"}))

    before = utcnow()
    action = aol_harness.run("POST_SOCIAL", POST)

    assert (action.status, action.attempts) == (Status.PENDING, 0)
    assert before + timedelta(seconds=119) <= action.not_before
    assert action.not_before <= utcnow() + timedelta(seconds=121)


def test_an_answer_lost_after_sending_is_resent_with_the_same_key_into_one_post(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(accept_then_hang=True))

    first = aol_harness.run("POST_SOCIAL", POST)
    assert first.status == Status.RETRY
    aol_harness.run_due()

    assert aol_harness.action(first.id).status == Status.SUCCESS
    assert len(social_endpoint.received) == 2
    assert len(social_endpoint.posts) == 1


def test_an_unreachable_endpoint_is_retried(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    social_endpoint.__exit__()  # nothing listens on its port any more

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.RETRY
    assert "could not reach" in (action.last_error or "")


def test_a_slow_endpoint_times_out_and_is_retried(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_TIMEOUT", "0.2")
    social_endpoint.reply(Reply(delay=30))

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.RETRY
    assert "got no answer" in (action.last_error or "")
    assert "ReadTimeout" in (action.last_error or "")


def test_a_redirect_is_not_followed_and_fails_permanently(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint
) -> None:
    social_endpoint.reply(Reply(302, b"", {"Location": "http://elsewhere.invalid/hook"}))

    action = aol_harness.run("POST_SOCIAL", POST)

    assert action.status == Status.FAILED
    assert "redirect" in (action.last_error or "")
    assert len(social_endpoint.received) == 1


def test_no_account_fails_permanently_and_says_what_to_set(aol_harness: ActionHarness) -> None:
    action = aol_harness.run("POST_SOCIAL", POST, max_attempts=5)

    assert action.status == Status.FAILED
    assert action.attempts == 1
    assert "set AOL_SOCIAL_MASTODON_TOKEN (or AOL_SOCIAL_ENDPOINT)" in (action.last_error or "")
    assert "proof mode" in (action.last_error or "")


def test_a_native_account_takes_precedence_over_the_webhook(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, mastodon: FakeMastodon
) -> None:
    action = aol_harness.run("POST_SOCIAL", POST)

    assert as_dict(action.result)["provider"] == "mastodon"
    assert social_endpoint.received == [] and len(mastodon.posts) == 1


# --- proof mode -----------------------------------------------------------------------------


def test_proof_mode_opens_no_connection_and_records_the_exact_requests_redacted(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    action = aol_harness.run("POST_SOCIAL", POST, proof_mode=True, idempotency_key="proof-1")

    assert action.status == Status.SUCCESS, action.last_error
    assert mastodon.connections == 0
    [artifact] = aol_harness.artifacts(action.id)
    assert artifact.name == "requests.json"
    assert artifact.media_type == "application/json"
    assert artifact.sha256 == hashlib.sha256(artifact.content).hexdigest()
    assert mastodon.token.encode() not in artifact.content
    [request] = json.loads(artifact.content)["requests"]
    assert request == {
        "method": "POST",
        "url": f"{mastodon.base_url}/api/v1/statuses",
        "headers": {"Authorization": "<redacted>", "Idempotency-Key": "proof-1"},
        "json": {"status": "Hello from AOL", "visibility": "private"},
    }
    assert action.result == {
        "proof": True,
        "artifact": f"aol://artifacts/{action.id}/requests.json",
        "sha256": artifact.sha256,
        "provider": "mastodon",
        "requests": 1,
    }


def test_proof_mode_needs_no_account(aol_harness: ActionHarness) -> None:
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
        {"social_platform": "x", "content": "hi", "media": [{"alt": "no source"}]},
        {"social_platform": "mastodon", "content": "hi", "audience": "galaxy"},
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
        "media-without-source",
        "audience-without-visibility",
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


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    assert retry_after("30", now) == now + timedelta(seconds=30)
    assert retry_after("Mon, 02 Mar 2026 12:01:00 GMT", now) == now + timedelta(minutes=1)
    assert retry_after("soon", now) is None
    assert retry_after("99999999", now) == now + MAX_SNOOZE
