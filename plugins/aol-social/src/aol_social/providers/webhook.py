"""The webhook: any other network or publishing service, reached through an endpoint you run.

The body is the post as JSON, signed with HMAC-SHA256 when ``AOL_SOCIAL_WEBHOOK_SECRET`` is
set (``X-AOL-Signature: sha256=<hex>``); ``Idempotency-Key`` is the action's idempotency key
on every attempt, and receivers must drop a repeat, which makes re-sending after a lost answer
safe.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from aol_social.payload import PLATFORM_LIMITS, Post
from aol_social.providers.base import Provider, Published
from aol_social.providers.transport import Request, body_json

SIGNATURE_HEADER = "X-AOL-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook(Provider):
    name: ClassVar[str] = "webhook"
    label: ClassVar[str] = "the webhook"

    def text_problems(self, post: Post) -> list[str]:
        limit = PLATFORM_LIMITS[post.platform]
        if len(post.content) > limit:
            return [f"content is {len(post.content)} characters; {post.platform} accepts "
                    f"{limit}"]
        return []

    def media_problems(self, post: Post) -> list[str]:
        return []  # the receiver fetches the media it is told about

    def token(self, http: httpx.Client) -> str:
        return self.account.secret("token") or ""

    def create_request(self, post: Post, key: str, refs: Sequence[Any], token: str) -> Request:
        body = post.request_body()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Accept": "application/json", "Idempotency-Key": key}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        secret = self.account.secret("secret")
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        return Request("POST", self.account.base_url, headers=headers, content=body,
                       secret_path=self.account.secret_path)

    def published(self, response: httpx.Response, key: str) -> Published:
        body = body_json(response)
        if isinstance(body, dict) and ("id" in body or "url" in body):
            return Published(str(body.get("id", "")), body.get("url"))
        return Published(f"HTTP {response.status_code}", None)  # a receiver without ids

    def verify(self, http: httpx.Client) -> str:
        return "a webhook has no credentials to check; posts go to " + self.account.shown_url(
            self.account.base_url)
