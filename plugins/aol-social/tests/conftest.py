"""Fixtures for the aol-social tests: each platform's fake, started on 127.0.0.1 and named by
the environment the handler reads; every other AOL_SOCIAL_ variable removed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aol_social.testing import FakeBluesky, FakeEndpoint, FakeLinkedIn, FakeMastodon, FakeX

#: seconds the handler waits for an answer: short, so "never answers" tests end quickly
SHORT_TIMEOUT = "1.0"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AOL_SOCIAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AOL_SOCIAL_TIMEOUT", SHORT_TIMEOUT)


@pytest.fixture
def social_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    with FakeEndpoint() as endpoint:
        monkeypatch.setenv("AOL_SOCIAL_ENDPOINT", endpoint.url)
        yield endpoint


@pytest.fixture
def mastodon(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        monkeypatch.setenv("AOL_SOCIAL_MASTODON_BASE_URL", fake.base_url)
        monkeypatch.setenv("AOL_SOCIAL_MASTODON_TOKEN", fake.token)
        yield fake


@pytest.fixture
def bluesky(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBluesky]:
    with FakeBluesky() as fake:
        monkeypatch.setenv("AOL_SOCIAL_BLUESKY_PDS_URL", fake.base_url)
        monkeypatch.setenv("AOL_SOCIAL_BLUESKY_HANDLE", fake.account_handle)
        monkeypatch.setenv("AOL_SOCIAL_BLUESKY_APP_PASSWORD", fake.app_password)
        yield fake


@pytest.fixture
def linkedin(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLinkedIn]:
    with FakeLinkedIn() as fake:
        monkeypatch.setenv("AOL_SOCIAL_LINKEDIN_BASE_URL", fake.base_url)
        monkeypatch.setenv("AOL_SOCIAL_LINKEDIN_TOKEN", fake.token)
        monkeypatch.setenv("AOL_SOCIAL_LINKEDIN_AUTHOR", "urn:li:person:abc123")
        yield fake


@pytest.fixture
def x(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeX]:
    with FakeX() as fake:
        monkeypatch.setenv("AOL_SOCIAL_X_BASE_URL", fake.base_url)
        monkeypatch.setenv("AOL_SOCIAL_X_TOKEN", fake.token)
        yield fake


@pytest.fixture
def aol_plugins() -> list[str]:
    """The kit's harness loads this plugin alone, whatever else is installed."""
    return ["aol-social"]
