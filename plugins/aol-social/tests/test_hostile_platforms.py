"""Hostile platform answers and payloads: a platform echoing the token in its error, rate-limit
reset headers in the past or unparsable, a Bluesky record that already exists when a retry
creates it, scripts whose X weight is per code point. Each must leave exactly one post (or a
held action) and no secret anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from aol_core import InvalidPayload, Status
from aol_core.models import Action
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow

from aol_social import store
from aol_social.providers.base import MAX_SNOOZE
from aol_social.testing import FakeBluesky, FakeMastodon, FakeX, Received, Reply, reply_json

TOOT = {"social_platform": "mastodon", "content": "Hello from AOL"}
SKEET = {"social_platform": "bluesky", "content": "Spring is here"}
TWEET = {"social_platform": "x", "content": "Hello from AOL"}


def everything_stored(harness: ActionHarness, action_id: int) -> str:
    """The action's error, result and every log line, as one text to search for secrets."""
    action = harness.action(action_id)
    lines = [str(action.last_error), str(action.result)]
    lines += [entry.message for entry in harness.logs(action_id)]
    return "\n".join(lines)


@pytest.mark.parametrize("status", [401, 422])
def test_a_token_echoed_back_in_an_error_body_is_not_stored(
    aol_harness: ActionHarness, mastodon: FakeMastodon, status: int
) -> None:
    mastodon.fail("/api/v1/statuses", reply_json(
        status, {"error": f"token {mastodon.token} is not allowed to post"}))

    action = aol_harness.run("POST_SOCIAL", TOOT)

    assert action.status == Status.FAILED
    assert mastodon.token not in everything_stored(aol_harness, action.id)
    assert "is not allowed to post" in (action.last_error or "")


def test_a_bluesky_session_token_echoed_back_is_not_stored(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    aol_harness.run("POST_SOCIAL", SKEET)
    access = bluesky.access
    bluesky.fail("/xrpc/com.atproto.repo.createRecord",
                 reply_json(400, {"error": "InvalidRequest", "message": f"bad jwt {access}"}))

    action = aol_harness.run("POST_SOCIAL", {**SKEET, "content": "Second"})

    assert action.status == Status.FAILED
    assert str(access) not in everything_stored(aol_harness, action.id)


@pytest.mark.parametrize("reset", [
    "2026-01-01T00:00:00",  # an ISO time without a zone
    "not a time",
])
def test_mastodon_429_with_an_odd_reset_header_snoozes_without_using_an_attempt(
    aol_harness: ActionHarness, mastodon: FakeMastodon, reset: str
) -> None:
    mastodon.fail("/api/v1/statuses", reply_json(429, {"error": "Too many requests"},
                                                 {"X-RateLimit-Reset": reset}))

    action = aol_harness.run("POST_SOCIAL", TOOT)

    assert (action.status, action.attempts) == (Status.PENDING, 0), action.last_error
    assert action.not_before is not None and action.not_before > utcnow()
    assert mastodon.posts == []


@pytest.mark.parametrize("header", [
    {"x-rate-limit-reset": "1"},  # long past
    {"x-rate-limit-reset": "9" * 30},  # beyond any calendar
    {"Retry-After": "9" * 30},
])
def test_x_429_with_a_reset_in_the_past_or_absurdly_far_snoozes_a_bounded_while(
    aol_harness: ActionHarness, x: FakeX, header: dict[str, str]
) -> None:
    x.fail("/2/tweets", reply_json(429, {"title": "Too Many Requests"}, header))

    action = aol_harness.run("POST_SOCIAL", TWEET)

    assert (action.status, action.attempts) == (Status.PENDING, 0), action.last_error
    assert action.not_before is not None
    assert utcnow() < action.not_before <= utcnow() + MAX_SNOOZE
    assert x.posts == []


class GatewayAfterWrite(FakeBluesky):
    """A PDS behind a proxy that answers 504 to the first createRecord after writing it."""

    gateway_failed = False

    def handle(self, request: Received) -> Reply:
        answer = super().handle(request)
        if request.path.endswith("createRecord") and not self.gateway_failed:
            self.gateway_failed = True
            return Reply(504, b"<html>Gateway Timeout</html>", {"Content-Type": "text/html"})
        return answer


def test_bluesky_record_written_behind_a_gateway_504_is_found_not_posted_again(
    aol_harness: ActionHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GatewayAfterWrite() as pds:
        monkeypatch.setenv("AOL_SOCIAL_BLUESKY_PDS_URL", pds.base_url)
        monkeypatch.setenv("AOL_SOCIAL_BLUESKY_HANDLE", pds.account_handle)
        monkeypatch.setenv("AOL_SOCIAL_BLUESKY_APP_PASSWORD", pds.app_password)

        action = aol_harness.run("POST_SOCIAL", SKEET)

        assert action.status == Status.SUCCESS, action.last_error
        [post] = pds.posts
        assert action.result["id"] == post["uri"]  # type: ignore[index]


def test_bluesky_released_after_a_hold_meets_its_own_record_and_succeeds(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    """A person releases a held post that had gone out: createRecord refuses the taken key,
    and the record under it is the post, not a reason to fail."""
    bluesky.fail("/xrpc/com.atproto.repo.createRecord", Reply(accept_then_hang=True))
    bluesky.fail("/xrpc/com.atproto.repo.getRecord", Reply(503, b"busy"))
    first = aol_harness.run("POST_SOCIAL", SKEET)
    assert first.status == Status.RETRY, first.last_error
    store.mark(aol_harness.engine, first.idempotency_key, store.State.HELD)
    with aol_harness.session() as session:
        session.get(Action, first.id).not_before = utcnow()  # type: ignore[union-attr]

    aol_harness.run_due()

    action = aol_harness.action(first.id)
    assert action.status == Status.SUCCESS, action.last_error
    assert len(bluesky.posts) == 1


def test_x_weighs_each_code_point_of_an_indic_cluster_at_enqueue(
    aol_harness: ActionHarness,
) -> None:
    """X (twitter-text) weighs code points, not what a reader sees as one character: a
    Devanagari syllable of four code points weighs 4, so 100 of them do not fit in 280."""
    syllable = "\u0915\u094d\u0937\u093f"  # क्षि: one grapheme, four code points
    with pytest.raises(InvalidPayload, match="the limit is 280"):
        aol_harness.enqueue("POST_SOCIAL", {"social_platform": "x", "content": syllable * 100})
    aol_harness.enqueue("POST_SOCIAL", {"social_platform": "x", "content": syllable * 70})


def test_x_answering_a_post_with_a_body_that_is_not_the_post_is_held_not_failed(
    aol_harness: ActionHarness, x: FakeX
) -> None:
    """X created the post but the 2xx carries no id (a proxy's page): it may exist, and X
    cannot be asked, so a person decides; the action neither fails nor posts again."""
    original = x.handle

    def posted_then_garbled(request: Received) -> Reply:
        answer = original(request)
        return Reply(200, b"<html>ok</html>", {"Content-Type": "text/html"}) if (
            answer.status == 201) else answer

    x.handle = posted_then_garbled  # type: ignore[method-assign]
    action = aol_harness.run("POST_SOCIAL", TWEET, max_attempts=1)

    assert action.status == Status.HELD, action.last_error
    assert "cannot be asked" in (action.last_error or "")
    assert len(x.posts) == 1


def test_mastodon_answering_with_an_error_in_a_200_is_resent_with_its_key_into_one_post(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    original = mastodon.handle
    garbled: list[bool] = []

    def posted_then_garbled(request: Received) -> Reply:
        answer = original(request)
        if request.path == "/api/v1/statuses" and not garbled:
            garbled.append(True)
            return reply_json(200, {"error": "something odd"})
        return answer

    mastodon.handle = posted_then_garbled  # type: ignore[method-assign]
    first = aol_harness.run("POST_SOCIAL", TOOT)
    assert first.status == Status.RETRY, first.last_error
    with aol_harness.session() as session:
        session.get(Action, first.id).not_before = utcnow()  # type: ignore[union-attr]

    aol_harness.run_due()

    action = aol_harness.action(first.id)
    assert action.status == Status.SUCCESS, action.last_error
    [post] = mastodon.posts
    assert action.result["id"] == post["id"]  # type: ignore[index]


def test_a_post_for_one_network_naming_another_networks_account_is_refused_at_enqueue(
    aol_harness: ActionHarness, mastodon: FakeMastodon, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An X post naming a Mastodon account would go out on Mastodon, checked against
    Mastodon's limits: the user hears at once instead."""
    path = tmp_path / "accounts.toml"
    path.write_text(f'[accounts.acme-mastodon]\nprovider = "mastodon"\n'
                    f'base_url = "{mastodon.base_url}"\ntoken_env = "ACME_TOKEN"\n')
    monkeypatch.setenv("AOL_SOCIAL_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("ACME_TOKEN", mastodon.token)

    with pytest.raises(InvalidPayload, match="'acme-mastodon' publishes to mastodon, not x"):
        aol_harness.enqueue("POST_SOCIAL", {**TWEET, "account": "acme-mastodon"})
    assert mastodon.posts == []
