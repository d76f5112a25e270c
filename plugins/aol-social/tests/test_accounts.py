"""Accounts from the environment and a file, what ``aol social accounts|verify`` print, and
the promise that no secret reaches payloads, results, logs, artifacts, errors or listings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from aol_core import InvalidPayload, PermanentError, Status
from aol_core.testing import ActionHarness
from sqlalchemy import text

from aol_social import accounts
from aol_social.testing import (
    FakeBluesky,
    FakeEndpoint,
    FakeLinkedIn,
    FakeMastodon,
    FakeX,
    Reply,
)

WEBHOOK_TOKEN, WEBHOOK_SECRET = "webhook-token-value", "webhook-signing-secret"
SECRETS = ("mastodon-secret-token", "app-pass-secret", "linkedin-secret-token",
           "x-secret-token")


def test_accounts_lists_the_environment_accounts_without_secrets(
    mastodon: FakeMastodon, bluesky: FakeBluesky, linkedin: FakeLinkedIn, x: FakeX
) -> None:
    listing = accounts.list_accounts(as_json=True)

    described = {a["name"]: a for a in json.loads(listing)}
    assert sorted(described) == ["bluesky", "linkedin", "mastodon", "x"]
    assert described["mastodon"]["secrets"] == {
        "token": {"from": "AOL_SOCIAL_MASTODON_TOKEN", "set": True}}
    assert described["bluesky"]["settings"]["handle"] == "alice.test"
    for output in (listing, accounts.list_accounts()):
        assert not any(secret in output for secret in SECRETS)


def test_named_accounts_come_from_a_file_that_only_references_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mastodon: FakeMastodon
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(f'[accounts.acme]\nprovider = "mastodon"\nbase_url = "{mastodon.base_url}"\n'
                    'token_env = "ACME_TOKEN"\n')
    monkeypatch.setenv("AOL_SOCIAL_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("ACME_TOKEN", mastodon.token)

    [verified] = accounts.verify("acme")

    assert (verified.ok, verified.detail) == (True, "@alice")
    assert "ACME_TOKEN" in accounts.list_accounts()


def test_a_secret_written_into_the_accounts_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text('[accounts.acme]\nprovider = "x"\ntoken = "inline-secret"\n')
    monkeypatch.setenv("AOL_SOCIAL_ACCOUNTS_FILE", str(path))

    with pytest.raises(PermanentError, match="token_env") as refused:
        accounts.list_accounts()

    assert "inline-secret" not in str(refused.value)


def test_verify_checks_every_account_with_its_platform(
    aol_harness: ActionHarness, mastodon: FakeMastodon, bluesky: FakeBluesky,
    linkedin: FakeLinkedIn, x: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_X_TOKEN", "revoked-x-token")

    found = {v.account: v for v in accounts.verify(engine=aol_harness.engine)}

    assert found["mastodon"].detail == "@alice" and found["mastodon"].ok
    assert found["bluesky"].detail == "@alice.test" and found["bluesky"].ok
    assert found["linkedin"].detail == "Alice Example" and found["linkedin"].ok
    assert not found["x"].ok and "account 'x'" in found["x"].detail
    assert "revoked-x-token" not in found["x"].detail


def test_no_secret_is_stored_or_logged_in_payloads_results_logs_artifacts_or_errors(
    aol_harness: ActionHarness, mastodon: FakeMastodon, bluesky: FakeBluesky,
    linkedin: FakeLinkedIn, x: FakeX, social_endpoint: FakeEndpoint,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_TOKEN", WEBHOOK_TOKEN)
    monkeypatch.setenv("AOL_SOCIAL_WEBHOOK_SECRET", WEBHOOK_SECRET)
    caplog.set_level(logging.DEBUG)
    posts = [("mastodon", "one"), ("bluesky", "two"), ("linkedin", "three"), ("x", "four"),
             ("facebook", "five")]
    for platform, content in posts:
        for proof in (False, True):
            aol_harness.run("POST_SOCIAL", {"social_platform": platform, "content": content},
                            proof_mode=proof)
    linkedin.token = "rotated"  # the next LinkedIn post is refused: its error is stored too
    failed = aol_harness.run("POST_SOCIAL", {"social_platform": "linkedin", "content": "six"})
    assert failed.status == Status.FAILED

    with aol_harness.engine.connect() as conn:
        stored = " ".join(
            str(row) for table in ("aol_actions", "aol_execution_logs", "aol_artifacts",
                                   "aol_social_publications")
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        )
    assert "urn:li:share" in stored and "five" in stored  # the scan reads what was stored
    assert len(social_endpoint.posts) == 1  # the webhook's secrets were used, not just set
    assert "401 Unauthorized" in caplog.text  # the scan reads what was logged, the refusal too
    for secret in (*SECRETS, WEBHOOK_TOKEN, WEBHOOK_SECRET):
        assert secret not in stored
        assert secret not in caplog.text


def test_a_refused_bluesky_app_password_fails_naming_the_account_and_never_shows_it(
    aol_harness: ActionHarness, bluesky: FakeBluesky, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_BLUESKY_APP_PASSWORD", "revoked-app-password")
    caplog.set_level(logging.DEBUG)

    action = aol_harness.run("POST_SOCIAL", {"social_platform": "bluesky", "content": "hi"},
                             max_attempts=5)

    assert (action.status, action.attempts) == (Status.FAILED, 1)
    assert "app password of account 'bluesky'" in (action.last_error or "")
    logged = " ".join(str(entry.message) for entry in aol_harness.logs(action.id))
    for shown in (action.last_error or "", logged, caplog.text):
        assert "revoked-app-password" not in shown
    assert bluesky.posts == []


# --- Mastodon's character limit: configured for enqueue, read from the instance by verify --


def test_verify_says_how_to_use_an_instance_limit_above_the_configured_one(
    mastodon: FakeMastodon
) -> None:
    mastodon.max_characters = 5000

    [verified] = accounts.verify("mastodon")

    assert verified.ok
    assert verified.detail == ("@alice; the instance allows 5000 characters, posts are checked "
                               "against 500: set AOL_SOCIAL_MASTODON_CHAR_LIMIT to 5000 to use "
                               "them")


def test_verify_fails_when_the_instance_allows_less_than_enqueue_accepts(
    mastodon: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_MASTODON_CHAR_LIMIT", "1000")
    mastodon.max_characters = 500

    [verified] = accounts.verify("mastodon")

    assert not verified.ok
    assert "refused at publish time: set AOL_SOCIAL_MASTODON_CHAR_LIMIT to 500" in (
        verified.detail)


def test_verify_with_an_instance_that_does_not_say_its_limit_still_checks_credentials(
    mastodon: FakeMastodon
) -> None:
    mastodon.fail("/api/v2/instance", Reply(404, b'{"error": "Not Found"}'))

    [verified] = accounts.verify("mastodon")

    assert verified.ok
    assert verified.detail.startswith("@alice; the instance's character limit is unknown")


def test_enqueue_checks_the_character_limit_configured_for_the_named_account(
    aol_harness: ActionHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    mastodon: FakeMastodon
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(f'[accounts.long-posts]\nprovider = "mastodon"\n'
                    f'base_url = "{mastodon.base_url}"\nchar_limit = 5000\n'
                    'token_env = "LONG_TOKEN"\n')
    monkeypatch.setenv("AOL_SOCIAL_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("LONG_TOKEN", mastodon.token)
    essay = {"social_platform": "mastodon", "content": "x" * 4000}

    action = aol_harness.run("POST_SOCIAL", {**essay, "account": "long-posts"})

    assert action.status == Status.SUCCESS, action.last_error
    assert len(mastodon.posts[0]["content"]) == 4000
    with pytest.raises(InvalidPayload, match="the limit is 500"):
        aol_harness.enqueue("POST_SOCIAL", essay)  # the environment's account: 500


def test_a_character_limit_that_is_not_a_whole_number_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, mastodon: FakeMastodon
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_MASTODON_CHAR_LIMIT", "5k")

    with pytest.raises(PermanentError, match=r"AOL_SOCIAL_MASTODON_CHAR_LIMIT must be a whole "
                                             r"number of at least 1, not '5k'"):
        accounts.list_accounts()
