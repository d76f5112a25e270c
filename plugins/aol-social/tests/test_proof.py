"""Proof mode: the real path up to the network, and an artifact holding exactly the requests
that would be sent, with secrets redacted; no connection opened (the network guard)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness

from aol_social.testing import FakeBluesky, FakeEndpoint, FakeX, network_guard


def recorded(harness: ActionHarness, action_id: int) -> dict[str, Any]:
    [artifact] = harness.artifacts(action_id)
    document: dict[str, Any] = json.loads(artifact.content)
    return document


def test_the_guard_refuses_a_real_post_so_it_would_see_one(
    aol_harness: ActionHarness, x: FakeX
) -> None:
    with network_guard() as guard:
        action = aol_harness.run("POST_SOCIAL", {"social_platform": "x", "content": "hi"})

    assert action.status == Status.RETRY
    assert guard.refused and x.posts == []


def test_a_bluesky_proof_records_uploads_and_the_record_with_facets_and_no_secret(
    aol_harness: ActionHarness, bluesky: FakeBluesky, tmp_path: Path
) -> None:
    image = tmp_path / "tulips.png"
    image.write_bytes(b"\x89PNG")
    payload = {"social_platform": "bluesky", "content": "New: https://example.com/é",
               "media": [{"path": str(image), "alt": "tulips"}]}

    with network_guard() as guard:
        action = aol_harness.run("POST_SOCIAL", payload, proof_mode=True)

    assert action.status == Status.SUCCESS, action.last_error
    assert guard.refused == [] and bluesky.connections == 0
    upload, create = recorded(aol_harness, action.id)["requests"]
    assert upload["url"] == f"{bluesky.base_url}/xrpc/com.atproto.repo.uploadBlob"
    assert upload["headers"]["Authorization"] == "<redacted>"
    assert upload["body"] == "<4 bytes>"
    record = create["json"]["record"]
    assert record["facets"][0]["index"] == {"byteStart": 5, "byteEnd": 5 + len(
        "https://example.com/é".encode())}
    assert record["embed"]["images"] == [{"alt": "tulips",
                                          "image": "<media from request 1>"}]
    assert bluesky.app_password.encode() not in aol_harness.artifacts(action.id)[0].content


def test_a_proof_without_any_account_shows_the_documented_default_url(
    aol_harness: ActionHarness,
) -> None:
    action = aol_harness.run("POST_SOCIAL", {"social_platform": "x", "content": "hi"},
                             proof_mode=True)

    [create] = recorded(aol_harness, action.id)["requests"]
    assert create["url"] == "https://api.x.com/2/tweets"
    assert create["json"] == {"text": "hi"}


def test_a_webhook_proof_records_the_signed_request_with_token_and_signature_redacted(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOL_SOCIAL_TOKEN", "webhook-token-value")
    monkeypatch.setenv("AOL_SOCIAL_WEBHOOK_SECRET", "webhook-signing-secret")

    with network_guard() as guard:
        action = aol_harness.run("POST_SOCIAL", {"social_platform": "instagram",
                                                 "content": "hi"}, proof_mode=True)

    assert action.status == Status.SUCCESS, action.last_error
    assert guard.refused == [] and social_endpoint.connections == 0
    [create] = recorded(aol_harness, action.id)["requests"]
    assert create["url"] == f"{social_endpoint.base_url}/…"  # a webhook's path is secret
    assert create["headers"]["Authorization"] == create["headers"]["X-AOL-Signature"] == (
        "<redacted>")
    assert create["headers"]["Idempotency-Key"] == action.idempotency_key
    content = aol_harness.artifacts(action.id)[0].content
    assert b"webhook-token-value" not in content and b"webhook-signing-secret" not in content
