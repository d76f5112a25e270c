"""The POST_SOCIAL payload: its JSON Schema and a typed view of a validated payload.

The schema is the first half of the enqueue-time check; the platform limits it cannot express
(graphemes, URLs counted as 23, media sizes) are the second, in :mod:`aol_social.limits`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

POST_SOCIAL = "POST_SOCIAL"

#: platforms a post may target, with the longest content each accepts (characters; see
#: aol_social.limits for how each platform counts them)
PLATFORM_LIMITS: dict[str, int] = {
    "bluesky": 300,
    "facebook": 10_000,
    "instagram": 2_200,
    "linkedin": 3_000,
    "mastodon": 500,
    "twitter": 280,
    "x": 280,
}
#: a ceiling the schema can check in code points; the exact rule is in aol_social.limits
SCHEMA_CEILING = {"bluesky": 3_000, "facebook": 10_000, "instagram": 2_200, "linkedin": 3_000}
MAX_AUDIENCE = 200
MAX_MEDIA = 4
MAX_ALT_TEXT = 1_500
MAX_ACCOUNT_NAME = 100

MEDIA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "minLength": 1},
        "url": {"type": "string", "pattern": "^https?://"},
        "alt": {"type": "string", "maxLength": MAX_ALT_TEXT},
    },
    "oneOf": [{"required": ["path"]}, {"required": ["url"]}],
    "additionalProperties": False,
}

PAYLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "social_platform": {"type": "string", "enum": sorted(PLATFORM_LIMITS)},
        "content": {
            "type": "string",
            "minLength": 1,
            "maxLength": max(PLATFORM_LIMITS.values()),
            "pattern": r"\S",
        },
        "audience": {"type": "string", "minLength": 1, "maxLength": MAX_AUDIENCE},
        "account": {"type": "string", "minLength": 1, "maxLength": MAX_ACCOUNT_NAME},
        "media": {"type": "array", "maxItems": MAX_MEDIA, "items": MEDIA_SCHEMA},
    },
    "required": ["social_platform", "content"],
    "additionalProperties": False,
    "allOf": [
        {
            "if": {
                "properties": {"social_platform": {"const": platform}},
                "required": ["social_platform"],
            },
            "then": {"properties": {"content": {"maxLength": limit}}},
        }
        for platform, limit in sorted(SCHEMA_CEILING.items())
    ],
}


@dataclass(frozen=True)
class Media:
    """An image to attach: a local file or a URL, with its alt text."""

    path: str | None
    url: str | None
    alt: str

    @property
    def source(self) -> str:
        return self.path or self.url or ""


@dataclass(frozen=True)
class Post:
    """A validated POST_SOCIAL payload (AOL checks the schema before the handler runs)."""

    platform: str
    content: str
    audience: str | None
    account: str | None
    media: tuple[Media, ...]
    idempotency_key: str
    action_id: int

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], action_id: int = 0) -> Post:
        """``action_id`` 0: not yet enqueued (the enqueue-time check)."""
        return cls(
            platform=str(payload["social_platform"]),
            content=str(payload["content"]),
            audience=payload.get("audience"),
            account=payload.get("account"),
            media=tuple(Media(m.get("path"), m.get("url"), str(m.get("alt", "")))
                        for m in payload.get("media", ())),
            idempotency_key=str(payload.get("idempotency_key", "")),
            action_id=action_id,
        )

    def request_body(self) -> bytes:
        """The JSON a webhook receives; the same bytes on every attempt of one action."""
        body: dict[str, Any] = {
            "action_id": self.action_id,
            "idempotency_key": self.idempotency_key,
            "social_platform": self.platform,
            "content": self.content,
            "audience": self.audience,
        }
        if self.media:
            body["media"] = [{"path": m.path, "url": m.url, "alt": m.alt} for m in self.media]
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
