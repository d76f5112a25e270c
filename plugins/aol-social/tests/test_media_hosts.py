"""Media URLs are fetched by the worker, so a payload could point them inside the worker's own
network (SSRF): hosts resolving to loopback, private, link-local or unspecified addresses are
refused unless AOL_SOCIAL_MEDIA_ALLOW_PRIVATE=1."""

from __future__ import annotations

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness

from aol_social.testing import FakeEndpoint, FakeMastodon, Reply


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254",
                                  "0.0.0.0", "[::1]"])
def test_a_media_url_on_an_internal_address_fails_naming_the_host_and_nothing_is_posted(
    aol_harness: ActionHarness, mastodon: FakeMastodon, host: str
) -> None:
    action = aol_harness.run("POST_SOCIAL", {
        "social_platform": "mastodon", "content": "hi",
        "media": [{"url": f"http://{host}/latest/meta-data/", "alt": "x"}]})

    assert action.status == Status.FAILED
    assert f"media host {host.strip('[]')} resolves to" in (action.last_error or "")
    assert "AOL_SOCIAL_MEDIA_ALLOW_PRIVATE=1" in (action.last_error or "")
    assert mastodon.posts == [] and mastodon.media == []


def test_the_refused_media_host_is_never_contacted(
    aol_harness: ActionHarness, mastodon: FakeMastodon, social_endpoint: FakeEndpoint
) -> None:
    action = aol_harness.run("POST_SOCIAL", {
        "social_platform": "mastodon", "content": "hi",
        "media": [{"url": social_endpoint.url, "alt": "x"}]})

    assert action.status == Status.FAILED
    assert social_endpoint.connections == 0


def test_allow_private_lets_a_loopback_image_through(
    aol_harness: ActionHarness, mastodon: FakeMastodon, social_endpoint: FakeEndpoint,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_MEDIA_ALLOW_PRIVATE", "1")
    social_endpoint.reply(Reply(200, b"GIF89a image", {"Content-Type": "image/gif"}))

    action = aol_harness.run("POST_SOCIAL", {
        "social_platform": "mastodon", "content": "hi",
        "media": [{"url": social_endpoint.url, "alt": "x"}]})

    assert action.status == Status.SUCCESS, action.last_error
    assert len(mastodon.media) == 1 and len(mastodon.posts) == 1
