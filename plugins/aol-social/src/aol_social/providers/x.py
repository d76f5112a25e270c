"""X: ``POST /2/tweets`` with a user-context token.

X has no idempotency key and its duplicate answer (403) does not name the existing post, so a
post whose answer was lost cannot be resolved by asking X: it is held for a person.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

import httpx

from aol_social.limits import LINK_WIDTH, x_weighted_length
from aol_social.payload import PLATFORM_LIMITS, Post
from aol_social.providers.base import (
    NeedsPerson,
    Provider,
    ProviderError,
    Published,
    epoch_seconds,
)
from aol_social.providers.transport import Request, body_json

MAX_WEIGHT = PLATFORM_LIMITS["x"]


class X(Provider):
    name: ClassVar[str] = "x"
    label: ClassVar[str] = "X"

    def text_problems(self, post: Post) -> list[str]:
        weight = x_weighted_length(post.content)
        if weight > MAX_WEIGHT:
            return [f"content weighs {weight} on X (a link counts as {LINK_WIDTH}, CJK "
                    f"characters and emoji as 2); the limit is {MAX_WEIGHT}"]
        return []

    def create_request(self, post: Post, key: str, refs: Sequence[Any], token: str) -> Request:
        return Request("POST", f"{self.account.base_url}/2/tweets",
                       headers={"Authorization": f"Bearer {token}"}, json={"text": post.content})

    def published(self, response: httpx.Response, key: str) -> Published:
        post_id = str(body_json(response)["data"]["id"])
        return Published(post_id, f"https://x.com/i/web/status/{post_id}")

    def existing(self, http: httpx.Client, key: str, since: datetime) -> Published | None:
        raise NeedsPerson("the answer to the X post was lost and X cannot be asked whether it "
                          "went out: check the account's posts, then cancel the action, or "
                          "retry it to post")

    def classify(self, response: httpx.Response) -> ProviderError:
        if response.status_code == 403 and "duplicate" in self.message(response).lower():
            return NeedsPerson("X refused the post as a duplicate of one already posted and "
                               "does not say which: check the account's posts")
        return super().classify(response)

    def reset_at(self, response: httpx.Response) -> datetime | None:
        return epoch_seconds(response.headers.get("x-rate-limit-reset")) or super().reset_at(
            response)

    def verify(self, http: httpx.Client) -> str:
        response = self.call(http, lambda t: Request(
            "GET", f"{self.account.base_url}/2/users/me",
            headers={"Authorization": f"Bearer {t}"}))
        return f"@{(body_json(response) or {}).get('data', {}).get('username', '?')}"
