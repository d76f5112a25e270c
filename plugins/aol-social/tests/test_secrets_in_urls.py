"""URLs that carry secrets: a webhook whose path is its secret (Slack's), and signed media URLs
whose query is their signature. Neither is ever shown whole outside the configuration."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness
from aol_core.testing.endpoint import FakeEndpoint

from aol_social.accounts import list_accounts
from aol_social.testing import FakeMastodon, Reply, network_guard, reply_json

SECRET_PATH = "/services/T000/B000/XXXXSECRET"
SIGNATURE = "X-Amz-Signature=SIGNEDSECRET"


def everything_stored(harness: ActionHarness, action_id: int) -> str:
    """The action's error, result, logs and artifacts, as one text to search for secrets."""
    action = harness.action(action_id)
    lines = [str(action.last_error), str(action.result)]
    lines += [entry.message for entry in harness.logs(action_id)]
    lines += [artifact.content.decode() for artifact in harness.artifacts(action_id)]
    return "\n".join(lines)


@pytest.fixture
def slack_style_hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    with FakeEndpoint(SECRET_PATH) as hook:
        monkeypatch.setenv("AOL_SOCIAL_ENDPOINT", hook.url)
        yield hook


def test_a_webhook_proof_shows_the_host_but_not_the_secret_path(
    aol_harness: ActionHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_ENDPOINT", "https://hooks.example" + SECRET_PATH)

    with network_guard():
        action = aol_harness.run("POST_SOCIAL", {"social_platform": "instagram",
                                                 "content": "hi"}, proof_mode=True)

    assert action.status == Status.SUCCESS, action.last_error
    [create] = json.loads(aol_harness.artifacts(action.id)[0].content)["requests"]
    assert create["url"] == "https://hooks.example/…"
    assert "XXXXSECRET" not in everything_stored(aol_harness, action.id)


def test_a_webhook_refusing_a_post_is_reported_without_the_secret_path(
    aol_harness: ActionHarness, slack_style_hook: FakeEndpoint
) -> None:
    slack_style_hook.reply(reply_json(400, {"error": "invalid_payload"}))

    action = aol_harness.run("POST_SOCIAL", {"social_platform": "instagram", "content": "hi"})

    assert action.status == Status.FAILED
    assert f"({slack_style_hook.base_url}/…)" in (action.last_error or "")
    assert "XXXXSECRET" not in everything_stored(aol_harness, action.id)


def test_a_webhook_that_never_answers_is_reported_without_the_secret_path(
    aol_harness: ActionHarness, slack_style_hook: FakeEndpoint
) -> None:
    slack_style_hook.reply(Reply(accept_then_hang=True))

    action = aol_harness.run("POST_SOCIAL", {"social_platform": "instagram", "content": "hi"})

    assert action.status == Status.RETRY, action.last_error
    assert f"{slack_style_hook.base_url}/…" in (action.last_error or "")
    assert "XXXXSECRET" not in everything_stored(aol_harness, action.id)


@pytest.mark.parametrize("as_json", [False, True])
def test_the_accounts_listing_shows_the_webhook_host_but_not_its_path(as_json: bool) -> None:
    listing = list_accounts(as_json, {"AOL_SOCIAL_ENDPOINT": "https://hooks.example" +
                                      SECRET_PATH})
    if as_json:
        listing = json.dumps(json.loads(listing), ensure_ascii=False)

    assert "https://hooks.example/…" in listing
    assert "XXXXSECRET" not in listing


def test_a_signed_media_url_that_fails_is_reported_without_its_query(
    aol_harness: ActionHarness, mastodon: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_MEDIA_ALLOW_PRIVATE", "1")
    image = f"{mastodon.base_url}/bucket/tulips.png?{SIGNATURE}#frag"
    mastodon.fail("/bucket/tulips.png", Reply(403, b"<Error>AccessDenied</Error>"))

    action = aol_harness.run("POST_SOCIAL", {"social_platform": "mastodon", "content": "hi",
                                             "media": [{"url": image, "alt": "tulips"}]})

    assert action.status == Status.FAILED
    assert f"{mastodon.base_url}/bucket/tulips.png answered HTTP 403" in (
        action.last_error or "")
    assert "SIGNEDSECRET" not in everything_stored(aol_harness, action.id)
    assert mastodon.posts == []
