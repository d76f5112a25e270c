"""Mastodon: ``POST /api/v1/statuses`` with a bearer token and an ``Idempotency-Key``.

Mastodon remembers the key per account for an hour and answers a repeat with the original
status, so re-sending after a lost answer cannot post twice within that hour; past it, the
handler holds the action for a person instead. Images go first through ``POST /api/v2/media``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
from aol_core import utcnow

from aol_social.config import Account
from aol_social.limits import LINK_WIDTH, mastodon_length
from aol_social.payload import Post
from aol_social.providers.base import (
    MediaFile,
    NeedsPerson,
    Provider,
    ProviderError,
    Published,
    Rejected,
    Unavailable,
    aware,
)
from aol_social.providers.transport import Request, Upload, body_json

DEFAULT_CHAR_LIMIT = 500
#: how long Mastodon keeps an Idempotency-Key (its API documentation)
IDEMPOTENCY_WINDOW = timedelta(hours=1)
#: audience words mapped to Mastodon's visibility values
VISIBILITY = {"public": "public", "everyone": "public", "unlisted": "unlisted",
              "followers": "private", "private": "private", "direct": "direct",
              "mentioned": "direct"}
#: polls of an image still being processed (202) before giving up for this attempt
MEDIA_POLLS = 10


class Mastodon(Provider):
    name: ClassVar[str] = "mastodon"
    label: ClassVar[str] = "Mastodon"
    max_media_bytes: ClassVar[int] = 16 * 1024 * 1024

    @property
    def char_limit(self) -> int:
        """The configured limit (checked a whole number when the account was loaded)."""
        return int(self.account.settings.get("char_limit", DEFAULT_CHAR_LIMIT))

    def text_problems(self, post: Post) -> list[str]:
        length = mastodon_length(post.content)
        if length > self.char_limit:
            return [f"content is {length} characters for Mastodon (a link counts as "
                    f"{LINK_WIDTH}); the limit is {self.char_limit}"]
        if post.audience is not None and post.audience.lower() not in VISIBILITY:
            return [f"audience {post.audience!r} has no Mastodon visibility; use one of "
                    f"{', '.join(sorted(VISIBILITY))}"]
        return []

    def _auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def upload_request(self, media: MediaFile, token: str) -> Request:
        return Request("POST", f"{self.account.base_url}/api/v2/media",
                       headers=self._auth(token),
                       form={"description": media.media.alt} if media.media.alt else {},
                       upload=Upload("file", media.filename, media.content, media.content_type))

    def media_ref(self, http: httpx.Client, response: httpx.Response) -> Any:
        media_id = str(body_json(response)["id"])
        for poll in range(MEDIA_POLLS):
            if response.status_code != 202:
                return media_id
            time.sleep(0.2 * (poll + 1))  # Mastodon is still processing the image
            response = self.call(http, lambda t: Request(
                "GET", f"{self.account.base_url}/api/v1/media/{media_id}",
                headers=self._auth(t)))
        raise Unavailable(f"Mastodon is still processing image {media_id}")

    def create_request(self, post: Post, key: str, refs: Sequence[Any], token: str) -> Request:
        body: dict[str, Any] = {"status": post.content}
        if post.audience is not None:
            body["visibility"] = VISIBILITY[post.audience.lower()]
        if refs:
            body["media_ids"] = list(refs)
        return Request("POST", f"{self.account.base_url}/api/v1/statuses",
                       headers={**self._auth(token), "Idempotency-Key": key}, json=body)

    def published(self, response: httpx.Response, key: str) -> Published:
        status = body_json(response)
        return Published(str(status["id"]), status.get("url"))

    def existing(self, http: httpx.Client, key: str, since: datetime) -> Published | None:
        if utcnow() - since < IDEMPOTENCY_WINDOW - timedelta(minutes=5):
            return None  # the same Idempotency-Key makes Mastodon return the original
        raise NeedsPerson(
            "the answer to the Mastodon post was lost more than an hour ago, longer than "
            "Mastodon remembers its Idempotency-Key: check the account's posts, then cancel "
            "the action or retry it to post"
        )

    def reset_at(self, response: httpx.Response) -> datetime | None:
        raw = response.headers.get("X-RateLimit-Reset")
        if raw:
            try:
                return aware(datetime.fromisoformat(raw.replace("Z", "+00:00")))
            except ValueError:
                pass
        return super().reset_at(response)

    def verify(self, http: httpx.Client) -> str:
        """Who the token belongs to, and the instance's own limits next to the configured
        ones (see :func:`compare_limits`)."""
        response = self.call(http, lambda t: Request(
            "GET", f"{self.account.base_url}/api/v1/accounts/verify_credentials",
            headers=self._auth(t)))
        who = f"@{body_json(response).get('acct', '?')}"
        try:
            instance = self.call(http, lambda t: Request(
                "GET", f"{self.account.base_url}/api/v2/instance", headers=self._auth(t)))
        except (Rejected, Unavailable) as exc:  # the credentials were fine: say what is unknown
            return f"{who}; the instance's character limit is unknown ({exc})"
        statuses = _mapping(_mapping(body_json(instance)).get("configuration")).get("statuses")
        return compare_limits(who, self.account, self.char_limit, _mapping(statuses))


class LimitsDisagree(ProviderError):
    """The instance refuses posts that enqueue accepts: they would fail at publish time."""


def compare_limits(who: str, account: Account, configured: int,
                   statuses: Mapping[str, Any]) -> str:
    """Enqueue checks the configured ``char_limit`` (it works offline and never calls a
    platform), so verification is where the instance's own limit is read: an instance that
    allows less than configured refuses posts that enqueue accepts, which fails verification
    naming the setting to lower; one that allows more is reported with the setting to raise.
    (Mastodon counts a link as 23 characters; its forks that count otherwise are not read.)"""
    limit = statuses.get("max_characters")
    if not isinstance(limit, int) or isinstance(limit, bool):
        return f"{who}; the instance does not say its character limit"
    setting = account.sources.get("char_limit", "char_limit")
    if limit < configured:
        raise LimitsDisagree(
            f"{who}: the instance allows {limit} characters but posts are checked at enqueue "
            f"against {configured}, so longer ones would be refused at publish time: set "
            f"{setting} to {limit}")
    if limit > configured:
        return (f"{who}; the instance allows {limit} characters, posts are checked against "
                f"{configured}: set {setting} to {limit} to use them")
    return who


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
