"""``aol social accounts`` and ``aol social verify`` as a person runs them: the real ``aol``
in a child process, against the fakes, never printing a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aol_social.testing import FakeBluesky, FakeLinkedIn, FakeMastodon, FakeX

SECRETS = ("mastodon-secret-token", "app-pass-secret", "x-secret-token",
           "linkedin-secret-token", "webhook-token-value", "webhook-signing-secret")


def aol(*args: str, db_url: str) -> subprocess.CompletedProcess[str]:
    """The real ``aol``, with this test's environment (the fakes' URLs and tokens)."""
    return subprocess.run([sys.executable, "-m", "aol_core.cli", "--db", db_url, *args],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


def shown(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def test_accounts_lists_each_account_and_where_its_secret_comes_from(
    aol_database_url: str, mastodon: FakeMastodon, x: FakeX, linkedin: FakeLinkedIn,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_ENDPOINT", "https://hooks.example.com/social")
    monkeypatch.setenv("AOL_SOCIAL_TOKEN", "webhook-token-value")
    monkeypatch.setenv("AOL_SOCIAL_WEBHOOK_SECRET", "webhook-signing-secret")

    done = aol("social", "accounts", db_url=aol_database_url)

    assert done.returncode == 0, done.stderr
    assert "AOL_SOCIAL_MASTODON_TOKEN (set)" in done.stdout
    assert "AOL_SOCIAL_X_TOKEN (set)" in done.stdout
    assert "AOL_SOCIAL_LINKEDIN_TOKEN (set)" in done.stdout
    assert "secret from AOL_SOCIAL_WEBHOOK_SECRET (set)" in done.stdout
    assert not any(secret in shown(done) for secret in SECRETS)


def test_accounts_json_describes_the_accounts_without_secrets(
    aol_database_url: str, mastodon: FakeMastodon, bluesky: FakeBluesky
) -> None:
    done = aol("social", "accounts", "--json", db_url=aol_database_url)

    assert done.returncode == 0, done.stderr
    described = {a["name"]: a for a in json.loads(done.stdout)}
    assert sorted(described) == ["bluesky", "mastodon"]
    assert not any(secret in shown(done) for secret in SECRETS)


def test_a_broken_accounts_file_is_one_line_and_exit_1(
    aol_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text('[accounts.acme]\nprovider = "x"\ntoken = "inline-secret"\n')
    monkeypatch.setenv("AOL_SOCIAL_ACCOUNTS_FILE", str(path))

    for command in (("accounts",), ("verify",)):
        done = aol("social", *command, db_url=aol_database_url)

        assert done.returncode == 1
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "token_env" in done.stderr and "inline-secret" not in done.stderr


def test_verify_checks_every_account_with_its_platform(
    aol_database_url: str, mastodon: FakeMastodon, bluesky: FakeBluesky, x: FakeX
) -> None:
    assert aol("db", "upgrade", db_url=aol_database_url).returncode == 0

    done = aol("social", "verify", db_url=aol_database_url)

    assert done.returncode == 0, shown(done)
    assert sorted(line.split("\t")[:2][0] for line in done.stdout.splitlines()) == [
        "bluesky", "mastodon", "x"]
    assert all(line.split("\t")[1] == "ok" for line in done.stdout.splitlines())
    assert not any(secret in shown(done) for secret in SECRETS)


def test_verify_exits_non_zero_when_a_platform_refuses_the_credentials(
    aol_database_url: str, mastodon: FakeMastodon, x: FakeX, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_X_TOKEN", "x-secret-token-revoked")

    done = aol("social", "verify", db_url=aol_database_url)

    assert done.returncode == 1
    assert {line.split("\t")[0]: line.split("\t")[1] for line in done.stdout.splitlines()} == {
        "mastodon": "ok", "x": "FAILED"}
    assert "revoked" not in shown(done)


def test_verify_one_named_account_and_an_unknown_name(
    aol_database_url: str, mastodon: FakeMastodon, x: FakeX
) -> None:
    one = aol("social", "verify", "mastodon", db_url=aol_database_url)
    unknown = aol("social", "verify", "nobody", db_url=aol_database_url)

    assert (one.returncode, one.stdout.split("\t")[:2]) == (0, ["mastodon", "ok"])
    assert unknown.returncode == 1 and "no such account" in unknown.stdout
