"""Fixtures for the aol-social tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aol_social.testing import FakeEndpoint


@pytest.fixture
def social_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEndpoint]:
    """A live endpoint, named by AOL_SOCIAL_ENDPOINT for the handler (no token, default timeout)."""
    with FakeEndpoint() as endpoint:
        monkeypatch.setenv("AOL_SOCIAL_ENDPOINT", endpoint.url)
        monkeypatch.setenv(
            "no_proxy", "127.0.0.1"
        )  # a proxy from the environment must not intercept
        monkeypatch.delenv("AOL_SOCIAL_TOKEN", raising=False)
        monkeypatch.delenv("AOL_SOCIAL_TIMEOUT", raising=False)
        yield endpoint


@pytest.fixture
def aol_plugins() -> list[str]:
    """The kit's harness loads this plugin alone, whatever else is installed."""
    return ["aol-social"]
