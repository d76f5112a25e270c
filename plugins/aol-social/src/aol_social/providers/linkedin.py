"""LinkedIn: ``POST /rest/posts`` with the versioned headers of the Posts API.

A created post answers 201 with an empty body and its URN in ``x-restli-id``. LinkedIn refuses
the same text twice with 422 ``DUPLICATE_POST`` naming the existing post, which is how an
attempt whose answer was lost learns that it did publish: re-sending is safe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any, ClassVar

import httpx
from aol_core import utcnow

from aol_social.payload import PLATFORM_LIMITS, Post
from aol_social.providers.base import (
    AlreadyPublished,
    NeedsPerson,
    Provider,
    ProviderError,
    Published,
)
from aol_social.providers.transport import Request, body_json

MAX_CHARS = PLATFORM_LIMITS["linkedin"]
_URN = re.compile(r"urn:li:(?:share|ugcPost|activity):\d+")
#: characters LinkedIn's "little text" commentary format reserves; escaped to stay literal
_RESERVED = re.compile(r"([\\|{}@\[\]()<>#*_~])")
VISIBILITY = {"public": "PUBLIC", "everyone": "PUBLIC", "connections": "CONNECTIONS",
              "followers": "CONNECTIONS"}


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


class LinkedIn(Provider):
    name: ClassVar[str] = "linkedin"
    label: ClassVar[str] = "LinkedIn"

    def text_problems(self, post: Post) -> list[str]:
        if len(post.content) > MAX_CHARS:
            return [f"content is {len(post.content)} characters; LinkedIn accepts {MAX_CHARS}"]
        if post.audience is not None and post.audience.lower() not in VISIBILITY:
            return [f"audience {post.audience!r} has no LinkedIn visibility; use one of "
                    f"{', '.join(sorted(VISIBILITY))}"]
        return []

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}",
                "LinkedIn-Version": self.account.settings.get("version", ""),
                "X-Restli-Protocol-Version": "2.0.0"}

    def create_request(self, post: Post, key: str, refs: Sequence[Any], token: str) -> Request:
        audience = (post.audience or "public").lower()
        return Request("POST", f"{self.account.base_url}/rest/posts",
                       headers=self._headers(token),
                       json={"author": self.account.setting("author"),
                             "commentary": _RESERVED.sub(r"\\\1", post.content),
                             "visibility": VISIBILITY[audience],
                             "distribution": {"feedDistribution": "MAIN_FEED",
                                              "targetEntities": [],
                                              "thirdPartyDistributionChannels": []},
                             "lifecycleState": "PUBLISHED",
                             "isReshareDisabledByAuthor": False})

    def published(self, response: httpx.Response, key: str) -> Published:
        urn = response.headers.get("x-restli-id", "")
        return Published(urn, post_url(urn) if urn else None)

    def classify(self, response: httpx.Response) -> ProviderError:
        body = body_json(response)
        if response.status_code == 422 and isinstance(body, dict) and (
            body.get("code") == "DUPLICATE_POST" or "duplicate" in str(body.get("message"))
        ):
            found = _URN.search(str(body.get("message", "")))
            if found is None:
                return NeedsPerson("LinkedIn refused the post as a duplicate without naming "
                                   "the existing one: check the account's posts")
            return AlreadyPublished(Published(found.group(), post_url(found.group()),
                                              existing=True))
        return super().classify(response)

    def reset_at(self, response: httpx.Response) -> datetime | None:
        """Retry-After when given; otherwise LinkedIn's daily limits reset at midnight UTC."""
        tomorrow = utcnow().date() + timedelta(days=1)
        return super().reset_at(response) or datetime.combine(tomorrow, time(), utcnow().tzinfo)

    def verify(self, http: httpx.Client) -> str:
        response = self.call(http, lambda t: Request(
            "GET", f"{self.account.base_url}/v2/userinfo",
            headers={"Authorization": f"Bearer {t}"}))
        body = body_json(response) or {}
        return str(body.get("name") or body.get("sub") or "?")
