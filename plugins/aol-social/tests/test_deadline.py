"""An overall deadline per request (AOL_SOCIAL_DEADLINE): a server dripping its answer a byte
at a time never lets a single read time out, and must not hold the worker anyway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness

from aol_social.testing import DrippingServer, FakeMastodon


@pytest.fixture
def dripping(monkeypatch: pytest.MonkeyPatch) -> Iterator[DrippingServer]:
    """A dripping server, a per-read timeout it never reaches and a short overall deadline."""
    monkeypatch.setenv("AOL_SOCIAL_TIMEOUT", "5")
    monkeypatch.setenv("AOL_SOCIAL_DEADLINE", "2")
    with DrippingServer() as server:
        yield server


def test_a_post_whose_answer_drips_is_a_lost_answer_after_the_deadline(
    aol_harness: ActionHarness, dripping: DrippingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_ENDPOINT", f"{dripping.base_url}/hooks/social")

    action = aol_harness.run("POST_SOCIAL", {"social_platform": "instagram", "content": "hi"})

    assert action.status == Status.RETRY, action.last_error
    assert "did not arrive within 2 seconds (AOL_SOCIAL_DEADLINE)" in (action.last_error or "")
    assert dripping.paths == ["/hooks/social"]


def test_a_media_download_that_drips_is_abandoned_after_the_deadline_and_nothing_posted(
    aol_harness: ActionHarness, dripping: DrippingServer, mastodon: FakeMastodon,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_MEDIA_ALLOW_PRIVATE", "1")
    image = f"{dripping.base_url}/tulips.png"

    action = aol_harness.run("POST_SOCIAL", {"social_platform": "mastodon", "content": "hi",
                                             "media": [{"url": image, "alt": "tulips"}]})

    assert action.status == Status.RETRY, action.last_error
    assert "took longer than 2 seconds (AOL_SOCIAL_DEADLINE)" in (action.last_error or "")
    assert mastodon.posts == [] and mastodon.media == []


def test_a_deadline_that_is_not_a_positive_number_is_refused_naming_the_variable(
    aol_harness: ActionHarness, mastodon: FakeMastodon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_DEADLINE", "soon")

    action = aol_harness.run("POST_SOCIAL", {"social_platform": "mastodon", "content": "hi"})

    assert action.status == Status.FAILED
    assert "AOL_SOCIAL_DEADLINE must be a positive number of seconds" in (
        action.last_error or "")
    assert mastodon.posts == []
