"""Each platform against a fake that behaves as the platform documents, run by AOL's dispatcher
on SQLite and PostgreSQL. In every case exactly one post exists on the fake at the end, or the
action is HELD with the reason."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from aol_core import InvalidPayload, Status
from aol_core.models import Action
from aol_core.queue import release_held
from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow

from aol_social import config, store
from aol_social.providers.bluesky import Bluesky
from aol_social.providers.transport import Request, client
from aol_social.testing import (
    FakeBluesky,
    FakeEndpoint,
    FakeLinkedIn,
    FakeMastodon,
    FakeX,
    Reply,
    reply_json,
)


def result_of(action: Any) -> dict[str, Any]:
    assert action.status == Status.SUCCESS, action.last_error
    assert isinstance(action.result, dict)
    return action.result


def assert_snoozed(action: Action, until: datetime) -> None:
    """Back to waiting until the platform's reset time, the attempt given back."""
    assert (action.status, action.attempts) == (Status.PENDING, 0), action.last_error
    assert action.not_before == until


def assert_held(action: Action, reason: str) -> None:
    assert action.status == Status.HELD, action.last_error
    assert reason in (action.last_error or "")


def release(harness: ActionHarness, action_id: int) -> Action:
    """A person decides the held action should run again (``aol actions release``), and a
    worker runs it."""
    with harness.session() as session:
        release_held(session, action_id)
    harness.run_due()
    return harness.action(action_id)


def due_now(harness: ActionHarness, action_id: int) -> None:
    """Skip the backoff of an action waiting for its retry."""
    with harness.session() as session:
        session.get(Action, action_id).not_before = utcnow()  # type: ignore[union-attr]


def publication(harness: ActionHarness, action_id: int) -> store.Publication:
    found = store.find(harness.engine, harness.action(action_id).idempotency_key)
    assert found is not None
    return found


# --- Mastodon -------------------------------------------------------------------------------

TOOT = {"social_platform": "mastodon", "content": "Hello from AOL", "audience": "followers"}


def test_mastodon_posts_once_with_the_action_key_and_records_id_and_url(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    action = aol_harness.run("POST_SOCIAL", TOOT, idempotency_key="launch-1")

    result = result_of(action)
    [post] = mastodon.posts
    assert post["visibility"] == "private"
    assert (result["id"], result["url"]) == (post["id"], post["url"])
    [sent] = mastodon.requests_to("/api/v1/statuses")
    assert sent.header("Idempotency-Key") == "launch-1"
    stored = publication(aol_harness, action.id)
    assert (stored.state, stored.remote_id, stored.url) == ("published", post["id"], post["url"])


def test_mastodon_503_first_is_retried_into_one_post(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    mastodon.fail("/api/v1/statuses", Reply(503, b"maintenance"))

    first = aol_harness.run("POST_SOCIAL", TOOT)
    assert first.status == Status.RETRY and "HTTP 503" in (first.last_error or "")
    aol_harness.run_due()

    result_of(aol_harness.action(first.id))
    assert len(mastodon.posts) == 1


def test_mastodon_answer_lost_after_accepting_is_resent_with_the_same_key_into_one_post(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    mastodon.fail("/api/v1/statuses", Reply(accept_then_hang=True))

    first = aol_harness.run("POST_SOCIAL", TOOT)
    assert first.status == Status.RETRY
    assert "no answer" in (first.last_error or "")
    assert publication(aol_harness, first.id).state == "sending"
    aol_harness.run_due()

    result = result_of(aol_harness.action(first.id))
    assert len(mastodon.posts) == 1
    assert result["id"] == mastodon.posts[0]["id"]
    one, two = mastodon.requests_to("/api/v1/statuses")
    assert one.header("Idempotency-Key") == two.header("Idempotency-Key")


def test_mastodon_429_snoozes_until_its_reset_header_without_using_an_attempt(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    reset = (utcnow() + timedelta(minutes=7)).replace(microsecond=0)
    mastodon.fail("/api/v1/statuses",
                  reply_json(429, {"error": "Too many requests"},
                             {"X-RateLimit-Reset": reset.isoformat()}))

    action = aol_harness.run("POST_SOCIAL", TOOT)

    assert_snoozed(action, reset)
    assert mastodon.posts == []


def test_mastodon_refused_token_fails_permanently_naming_the_account(
    aol_harness: ActionHarness, mastodon: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_MASTODON_TOKEN", "wrong-token-value")

    action = aol_harness.run("POST_SOCIAL", TOOT, max_attempts=5)

    assert action.status == Status.FAILED and action.attempts == 1
    assert "account 'mastodon'" in (action.last_error or "")
    assert "wrong-token-value" not in (action.last_error or "")


def test_mastodon_refusing_a_post_fails_it_permanently_with_mastodons_message(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    mastodon.fail("/api/v1/statuses", reply_json(
        422, {"error": "Validation failed: Text character limit of 500 exceeded"}))

    action = aol_harness.run("POST_SOCIAL", TOOT, max_attempts=5)

    assert (action.status, action.attempts) == (Status.FAILED, 1)
    assert "HTTP 422: Validation failed: Text character limit" in (action.last_error or "")
    assert mastodon.posts == []


def test_mastodon_uploads_the_image_with_its_alt_text_before_the_status(
    aol_harness: ActionHarness, mastodon: FakeMastodon, tmp_path: Path
) -> None:
    image = tmp_path / "spring.png"
    image.write_bytes(b"\x89PNG fake image bytes")

    action = aol_harness.run("POST_SOCIAL", {
        **TOOT, "media": [{"path": str(image), "alt": "a field of tulips"}]})

    result_of(action)
    [upload] = mastodon.media
    assert b"a field of tulips" in upload.body and b"fake image bytes" in upload.body
    assert mastodon.posts[0]["media_ids"] == ["m1"]
    paths = [r.path for r in mastodon.received]
    assert paths == ["/api/v2/media", "/api/v1/statuses"]


def test_mastodon_counts_a_link_as_23_characters_at_enqueue(aol_harness: ActionHarness) -> None:
    link = "https://example.com/" + "a" * 200
    aol_harness.enqueue("POST_SOCIAL", {"social_platform": "mastodon",
                                        "content": "x" * 476 + " " + link})
    with pytest.raises(InvalidPayload, match="limit is 500"):
        aol_harness.enqueue("POST_SOCIAL", {"social_platform": "mastodon",
                                            "content": "x" * 477 + " " + link})


# --- Bluesky --------------------------------------------------------------------------------

SKEET = {"social_platform": "bluesky", "content": "Spring is here 🌷 https://example.com/spring"}


def test_bluesky_logs_in_once_and_posts_with_link_facets_in_utf8_bytes(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    first = aol_harness.run("POST_SOCIAL", SKEET)
    second = aol_harness.run("POST_SOCIAL", {**SKEET, "content": "Second post"})

    result_of(first), result_of(second)
    assert bluesky.logins == 1
    assert len(bluesky.posts) == 2
    record = next(p["value"] for p in bluesky.posts if p["value"]["text"] == SKEET["content"])
    [facet] = record["facets"]
    start = len("Spring is here 🌷 ".encode())
    assert facet["index"] == {"byteStart": start, "byteEnd": start + len(
        "https://example.com/spring")}
    assert facet["features"][0]["uri"] == "https://example.com/spring"


def test_bluesky_expired_token_is_refreshed_rotating_both_tokens(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    result_of(aol_harness.run("POST_SOCIAL", SKEET))
    bluesky.expire_access_token()

    result_of(aol_harness.run("POST_SOCIAL", {**SKEET, "content": "After expiry"}))

    assert (bluesky.logins, bluesky.refreshes) == (1, 1)
    assert len(bluesky.posts) == 2
    stored = store.load_session(aol_harness.engine, "bluesky")
    assert (stored.access_jwt, stored.refresh_jwt) == (bluesky.access, bluesky.refresh)


def test_bluesky_logs_in_again_when_the_pds_no_longer_knows_the_stored_session(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    with store.session_lock(aol_harness.engine, "bluesky") as lock:
        lock.save(store.StoredSession(FakeBluesky.DID, "forgotten-access", "forgotten-refresh"))

    result_of(aol_harness.run("POST_SOCIAL", SKEET))

    assert bluesky.logins == 1 and len(bluesky.posts) == 1


def test_bluesky_answer_lost_is_resolved_with_get_record_into_one_post(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    bluesky.fail("/xrpc/com.atproto.repo.createRecord", Reply(accept_then_hang=True))

    action = aol_harness.run("POST_SOCIAL", SKEET)

    result = result_of(action)
    [post] = bluesky.posts
    assert result["id"] == post["uri"] and result["existing"] is True
    assert len(bluesky.requests_to("/xrpc/com.atproto.repo.getRecord")) == 1


def test_bluesky_answer_lost_with_the_pds_gone_is_checked_before_posting_again(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    bluesky.fail("/xrpc/com.atproto.repo.createRecord", Reply(accept_then_hang=True))
    bluesky.fail("/xrpc/com.atproto.repo.getRecord", Reply(503))

    first = aol_harness.run("POST_SOCIAL", SKEET)
    assert first.status == Status.RETRY
    aol_harness.run_due()

    result_of(aol_harness.action(first.id))
    assert len(bluesky.posts) == 1
    assert len(bluesky.requests_to("/xrpc/com.atproto.repo.createRecord")) == 1


def test_bluesky_429_snoozes_until_ratelimit_reset_without_using_an_attempt(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    reset = int((utcnow() + timedelta(minutes=3)).timestamp())
    bluesky.fail("/xrpc/com.atproto.repo.createRecord",
                 reply_json(429, {"error": "RateLimitExceeded"}, {"ratelimit-reset": str(reset)}))

    action = aol_harness.run("POST_SOCIAL", SKEET)

    assert_snoozed(action, datetime.fromtimestamp(reset, UTC))
    assert bluesky.posts == []


def test_bluesky_limits_count_graphemes_not_code_points(aol_harness: ActionHarness) -> None:
    accented = "e\u0301"  # one grapheme, two code points
    aol_harness.enqueue("POST_SOCIAL", {"social_platform": "bluesky", "content": accented * 300})
    with pytest.raises(InvalidPayload, match="301 graphemes"):
        aol_harness.enqueue("POST_SOCIAL",
                            {"social_platform": "bluesky", "content": accented * 301})


def test_bluesky_limits_count_utf8_bytes_too(aol_harness: ActionHarness) -> None:
    family = "\U0001F468\u200D\U0001F469\u200D\U0001F467"  # one grapheme, 18 bytes
    aol_harness.enqueue("POST_SOCIAL", {"social_platform": "bluesky", "content": family * 166})
    with pytest.raises(InvalidPayload, match="167 graphemes and 3006 bytes"):
        aol_harness.enqueue("POST_SOCIAL",
                            {"social_platform": "bluesky", "content": family * 167})


def test_bluesky_uploads_blobs_and_embeds_them_with_alt_text(
    aol_harness: ActionHarness, bluesky: FakeBluesky, tmp_path: Path
) -> None:
    image = tmp_path / "tulips.jpg"
    image.write_bytes(b"jpeg bytes")

    result_of(aol_harness.run("POST_SOCIAL", {
        **SKEET, "media": [{"path": str(image), "alt": "tulips"}]}))

    [blob] = bluesky.blobs
    assert blob.body == b"jpeg bytes" and blob.header("Content-Type") == "image/jpeg"
    [image_embed] = bluesky.posts[0]["value"]["embed"]["images"]
    assert image_embed["alt"] == "tulips"
    assert image_embed["image"]["ref"] == {"$link": "bafkblob1"}


def test_bluesky_refuses_an_image_over_its_size_limit_at_enqueue(
    aol_harness: ActionHarness, tmp_path: Path
) -> None:
    image = tmp_path / "big.png"
    image.write_bytes(b"x" * 1_000_001)

    with pytest.raises(InvalidPayload, match="at most 1000000"):
        aol_harness.enqueue("POST_SOCIAL", {**SKEET, "media": [{"path": str(image)}]})


def test_more_than_four_images_are_refused_at_enqueue(aol_harness: ActionHarness) -> None:
    with pytest.raises(InvalidPayload):
        aol_harness.enqueue("POST_SOCIAL", {**SKEET, "media": [{"url": "https://e.x/a.png"}] * 5})


# --- LinkedIn -------------------------------------------------------------------------------

SHARE = {"social_platform": "linkedin", "content": "We are hiring (two engineers)."}


def test_linkedin_reads_the_urn_from_an_empty_201(
    aol_harness: ActionHarness, linkedin: FakeLinkedIn
) -> None:
    result = result_of(aol_harness.run("POST_SOCIAL", SHARE))

    [post] = linkedin.posts
    assert result["id"] == post["urn"]
    assert result["url"] == f"https://www.linkedin.com/feed/update/{post['urn']}/"
    assert post["commentary"] == r"We are hiring \(two engineers\)."
    assert post["author"] == "urn:li:person:abc123"


def test_linkedin_answer_lost_resolves_through_duplicate_post_into_one_post(
    aol_harness: ActionHarness, linkedin: FakeLinkedIn
) -> None:
    linkedin.fail("/rest/posts", Reply(accept_then_hang=True))

    first = aol_harness.run("POST_SOCIAL", SHARE)
    assert first.status == Status.RETRY
    aol_harness.run_due()

    result = result_of(aol_harness.action(first.id))
    [post] = linkedin.posts
    assert (result["id"], result["existing"]) == (post["urn"], True)


def test_linkedin_429_snoozes_until_retry_after_without_using_an_attempt(
    aol_harness: ActionHarness, linkedin: FakeLinkedIn
) -> None:
    linkedin.fail("/rest/posts", Reply(429, b"{}", {"Retry-After": "600"}))
    before = utcnow()

    action = aol_harness.run("POST_SOCIAL", SHARE)

    assert (action.status, action.attempts) == (Status.PENDING, 0)
    assert before + timedelta(seconds=599) <= action.not_before
    assert action.not_before <= utcnow() + timedelta(seconds=601)
    assert linkedin.posts == []


def test_linkedin_429_without_retry_after_snoozes_until_its_daily_reset_at_midnight_utc(
    aol_harness: ActionHarness, linkedin: FakeLinkedIn
) -> None:
    linkedin.fail("/rest/posts", reply_json(429, {"message": "Resource level throttle limit "
                                                             "for calls to this resource is "
                                                             "reached", "status": 429}))
    midnights = {datetime.combine(utcnow().date() + timedelta(days=1), time(), UTC)}

    action = aol_harness.run("POST_SOCIAL", SHARE)

    midnights.add(datetime.combine(utcnow().date() + timedelta(days=1), time(), UTC))
    assert (action.status, action.attempts) == (Status.PENDING, 0), action.last_error
    assert action.not_before in midnights
    assert linkedin.posts == []


# --- X --------------------------------------------------------------------------------------

TWEET = {"social_platform": "x", "content": "Our spring collection is live."}


def test_x_posts_and_records_the_id_and_url(aol_harness: ActionHarness, x: FakeX) -> None:
    result = result_of(aol_harness.run("POST_SOCIAL", TWEET))

    [post] = x.posts
    assert result["id"] == post["id"]
    assert result["url"] == f"https://x.com/i/web/status/{post['id']}"


def test_x_answer_lost_is_held_for_a_person_not_reposted(
    aol_harness: ActionHarness, x: FakeX
) -> None:
    x.fail("/2/tweets", Reply(accept_then_hang=True))

    action = aol_harness.run("POST_SOCIAL", TWEET)

    assert_held(action, "check the account's posts")
    assert len(x.posts) == 1
    assert len(x.requests_to("/2/tweets")) == 1


def test_x_held_after_a_lost_answer_and_released_still_leaves_one_post(
    aol_harness: ActionHarness, x: FakeX
) -> None:
    x.fail("/2/tweets", Reply(accept_then_hang=True))
    action = aol_harness.run("POST_SOCIAL", TWEET)

    action = release(aol_harness, action.id)

    assert_held(action, "duplicate")  # X refuses the identical text: it went out the first time
    assert len(x.posts) == 1


def test_x_duplicate_403_is_held_not_failed(aol_harness: ActionHarness, x: FakeX) -> None:
    result_of(aol_harness.run("POST_SOCIAL", TWEET))

    action = aol_harness.run("POST_SOCIAL", TWEET)

    assert_held(action, "duplicate")
    assert action.attempts == 1
    assert len(x.posts) == 1


def test_x_429_snoozes_until_x_rate_limit_reset_without_using_an_attempt(
    aol_harness: ActionHarness, x: FakeX
) -> None:
    reset = int((utcnow() + timedelta(minutes=15)).timestamp())
    x.fail("/2/tweets", reply_json(429, {"title": "Too Many Requests"},
                                   {"x-rate-limit-reset": str(reset)}))

    action = aol_harness.run("POST_SOCIAL", TWEET)

    assert_snoozed(action, datetime.fromtimestamp(reset, UTC))
    assert x.posts == []


def test_x_weighs_cjk_as_two_at_enqueue(aol_harness: ActionHarness) -> None:
    aol_harness.enqueue("POST_SOCIAL", {"social_platform": "x", "content": "春" * 140})
    with pytest.raises(InvalidPayload, match="weighs 282"):
        aol_harness.enqueue("POST_SOCIAL", {"social_platform": "x", "content": "春" * 141})


def test_x_counts_a_link_as_23_at_enqueue(aol_harness: ActionHarness) -> None:
    link = "https://example.com/" + "a" * 100
    aol_harness.enqueue("POST_SOCIAL", {"social_platform": "x", "content": "x" * 256 + " " + link})
    with pytest.raises(InvalidPayload, match="weighs 281"):
        aol_harness.enqueue("POST_SOCIAL",
                            {"social_platform": "x", "content": "x" * 257 + " " + link})


def test_x_takes_no_media(aol_harness: ActionHarness) -> None:
    with pytest.raises(InvalidPayload, match="no media"):
        aol_harness.enqueue("POST_SOCIAL", {**TWEET, "media": [{"url": "https://e.x/a.png"}]})


# --- crash between the call and the commit --------------------------------------------------


def test_a_publication_recorded_before_a_crash_is_not_sent_again(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    first = aol_harness.run("POST_SOCIAL", TOOT)

    action = aol_harness.rerun(first.id)  # the worker crashed before the outcome's commit

    assert result_of(action)["existing"] is True
    assert len(mastodon.requests_to("/api/v1/statuses")) == 1


def test_a_crash_after_sending_leaves_the_intent_for_the_next_attempt_to_check(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    action_id = aol_harness.enqueue("POST_SOCIAL", SKEET)
    key = aol_harness.action(action_id).idempotency_key
    bluesky.fail("/xrpc/com.atproto.repo.createRecord", Reply(accept_then_hang=True))
    bluesky.fail("/xrpc/com.atproto.repo.getRecord", Reply(503))
    aol_harness.run_due()  # sent, answer lost, the platform could not be asked: RETRY
    assert store.find(aol_harness.engine, key).state == "sending"  # type: ignore[union-attr]

    aol_harness.run_due()

    result_of(aol_harness.action(action_id))
    assert len(bluesky.posts) == 1


# --- what a person and a later attempt see -----------------------------------------------------


def test_a_request_that_never_left_is_sent_again_without_asking_x(
    aol_harness: ActionHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeX() as gone:
        pass  # nothing listens on its port any more
    monkeypatch.setenv("AOL_SOCIAL_X_BASE_URL", gone.base_url)
    monkeypatch.setenv("AOL_SOCIAL_X_TOKEN", gone.token)
    action = aol_harness.run("POST_SOCIAL", TWEET)
    assert action.status == Status.RETRY and "could not reach" in (action.last_error or "")
    assert publication(aol_harness, action.id).state == "unsent"

    with FakeX() as x:
        monkeypatch.setenv("AOL_SOCIAL_X_BASE_URL", x.base_url)
        due_now(aol_harness, action.id)
        aol_harness.run_due()

    assert result_of(aol_harness.action(action.id))["id"] == x.posts[0]["id"]
    assert len(x.posts) == 1


def test_mastodon_past_its_idempotency_hour_is_held_and_a_persons_retry_sends_it(
    aol_harness: ActionHarness, mastodon: FakeMastodon
) -> None:
    action_id = aol_harness.enqueue("POST_SOCIAL", TOOT)
    key = aol_harness.action(action_id).idempotency_key
    store.open_intent(aol_harness.engine, idempotency_key=key, action_id=action_id,
                      account="mastodon", provider="mastodon", remote_key=key)
    store.mark_sending(aol_harness.engine, key)
    with aol_harness.engine.begin() as conn:  # that send was two hours ago
        conn.execute(store.publications.update().values(
            updated_at=utcnow() - timedelta(hours=2)))

    aol_harness.run_due()
    assert_held(aol_harness.action(action_id), "longer than Mastodon remembers")
    assert mastodon.posts == []

    result = result_of(release(aol_harness, action_id))

    assert result["id"] == mastodon.posts[0]["id"] and len(mastodon.posts) == 1


def test_bluesky_workers_racing_on_an_expired_token_refresh_it_once(
    aol_harness: ActionHarness, bluesky: FakeBluesky
) -> None:
    result_of(aol_harness.run("POST_SOCIAL", SKEET))
    bluesky.expire_access_token()
    engine = aol_harness.engine
    account = config.load_accounts()["bluesky"]
    tokens: list[str] = []

    def worker() -> None:
        with client(5.0) as http:
            tokens.append(Bluesky(account, engine).call(http, lambda t: Request(
                "GET", f"{bluesky.base_url}/xrpc/com.atproto.server.getSession",
                headers={"Authorization": f"Bearer {t}"})).request.headers["Authorization"])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert (bluesky.logins, bluesky.refreshes) == (1, 1)
    assert tokens == [f"Bearer {bluesky.access}"] * 4


def test_an_image_url_is_fetched_and_uploaded(
    aol_harness: ActionHarness, mastodon: FakeMastodon, social_endpoint: FakeEndpoint,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_MEDIA_ALLOW_PRIVATE", "1")  # the image is on loopback
    social_endpoint.reply(Reply(200, b"GIF89a image", {"Content-Type": "image/gif"}))

    result_of(aol_harness.run("POST_SOCIAL", {
        **TOOT, "media": [{"url": social_endpoint.url, "alt": "a gif"}]}))

    [upload] = mastodon.media
    assert b"GIF89a image" in upload.body and b"image/gif" in upload.body


@pytest.mark.parametrize(("platform", "path"), [
    ("bluesky", "/xrpc/com.atproto.repo.createRecord"),
    ("linkedin", "/rest/posts"),
    ("x", "/2/tweets"),
])
def test_a_503_first_attempt_is_retried_into_one_post(
    aol_harness: ActionHarness, request: pytest.FixtureRequest, platform: str, path: str
) -> None:
    fake = request.getfixturevalue(platform)
    fake.fail(path, Reply(503, b"over capacity"))

    first = aol_harness.run("POST_SOCIAL", {"social_platform": platform, "content": "Hello"})
    assert first.status == Status.RETRY
    aol_harness.run_due()

    result_of(aol_harness.action(first.id))
    assert len(fake.posts) == 1
