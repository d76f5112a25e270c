"""The POST_SOCIAL payload: its JSON Schema and a typed view of a validated payload."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

POST_SOCIAL = "POST_SOCIAL"

#: platforms a post may target, with the longest content each accepts (characters)
PLATFORM_LIMITS: dict[str, int] = {
    "facebook": 10_000,
    "instagram": 2_200,
    "linkedin": 3_000,
    "mastodon": 500,
    "twitter": 280,
}
MAX_AUDIENCE = 200

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
        for platform, limit in sorted(PLATFORM_LIMITS.items())
    ],
}


@dataclass(frozen=True)
class Post:
    """A validated POST_SOCIAL payload (AOL checks the schema before the handler runs)."""

    platform: str
    content: str
    audience: str | None
    idempotency_key: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Post:
        return cls(
            platform=str(payload["social_platform"]),
            content=str(payload["content"]),
            audience=payload.get("audience"),
            idempotency_key=str(payload["idempotency_key"]),
        )

    def request_body(self, action_id: int) -> bytes:
        """The JSON the endpoint receives; the same bytes on every attempt of one action."""
        body = {
            "action_id": action_id,
            "idempotency_key": self.idempotency_key,
            "social_platform": self.platform,
            "content": self.content,
            "audience": self.audience,
        }
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()

    def proof_text(self, action_id: int) -> str:
        """The proof-mode artifact: what would have been posted. No times, so a retry of the
        same action records identical content."""
        return (
            "POST_SOCIAL proof: no real post sent.\n"
            "\n"
            f"action id: {action_id}\n"
            f"idempotency key: {self.idempotency_key}\n"
            f"platform: {self.platform}\n"
            f"audience: {self.audience if self.audience is not None else '(none)'}\n"
            "content:\n"
            f"{self.content}\n"
        )
