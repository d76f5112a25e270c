"""What every provider does, and the outcomes it reports.

A provider knows one platform: it validates a post against the platform's limits, prepares
the requests (the same ones proof mode records), publishes, and classifies the platform's
answers into the outcomes below. It never touches the queue: the handler turns outcomes into
AOL's (retry, snooze, hold, fail) and keeps the publication's record.
"""

from __future__ import annotations

import email.utils
import mimetypes
import os
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar

import httpx
from aol_core import utcnow

from aol_social.config import Account
from aol_social.payload import Media, Post
from aol_social.providers.transport import AnswerLost, Request, body_json, excerpt, send

#: longest wait a rate limit may impose before the action is tried again
MAX_SNOOZE = timedelta(days=1)
#: the wait after a 429 whose reset time is missing, unreadable or already past (a clock
#: skewed against the platform's): never "now", which would retry at once, forever, for free
DEFAULT_SNOOZE = timedelta(minutes=1)


class ProviderError(Exception):
    """An answer (or its absence) the handler must act on; the message holds no secret."""


class RateLimited(ProviderError):
    """429: try again at ``until`` (from the platform's reset header), without an attempt."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class Unavailable(ProviderError):
    """5xx or 408: the platform did not create the post; retry with backoff."""


class CredentialsRejected(ProviderError):
    """401/403 for the account's credentials: no retry can fix it."""


class Rejected(ProviderError):
    """Any other 4xx: the platform refused the post, saying why."""


class NeedsPerson(ProviderError):
    """Only a person can tell whether the post went out (X's duplicate answer)."""


class AlreadyPublished(ProviderError):
    def __init__(self, published: Published) -> None:
        super().__init__(f"already published as {published.remote_id}")
        self.published = published


@dataclass(frozen=True)
class Published:
    remote_id: str
    url: str | None
    #: found on the platform from an earlier attempt rather than created now
    existing: bool = False


@dataclass(frozen=True)
class MediaFile:
    media: Media
    content: bytes
    content_type: str

    @property
    def filename(self) -> str:
        """The file's name; a URL's without its query (a signed URL's signature)."""
        if self.media.path:
            return os.path.basename(self.media.path)
        return os.path.basename(urllib.parse.urlsplit(self.media.url or "").path) or "image"


class Provider(ABC):
    """One platform. Subclasses set the class attributes and implement the abstract methods."""

    name: ClassVar[str]
    #: what users call the platform in messages
    label: ClassVar[str]
    #: largest image accepted, in bytes; 0: the provider takes no media
    max_media_bytes: ClassVar[int] = 0

    def __init__(self, account: Account) -> None:
        self.account = account

    # --- validate ------------------------------------------------------------------------

    @abstractmethod
    def text_problems(self, post: Post) -> list[str]:
        """What breaks the platform's text limits, in words a user can act on."""

    def problems(self, post: Post) -> list[str]:
        return self.text_problems(post) + self.media_problems(post)

    def media_problems(self, post: Post) -> list[str]:
        if post.media and not self.max_media_bytes:
            return [f"{self.label} posts take no media through aol-social"]
        found = []
        for media in post.media:
            if media.path is None:
                continue  # a URL's size is checked when it is fetched
            try:
                size = os.path.getsize(media.path)
            except OSError as exc:
                found.append(f"media {media.path}: {exc.strerror or exc}")
                continue
            if size > self.max_media_bytes:
                found.append(f"media {media.path} is {size} bytes; {self.label} accepts "
                             f"at most {self.max_media_bytes}")
        return found

    # --- prepare -------------------------------------------------------------------------

    def remote_key(self, idempotency_key: str) -> str:
        """What the platform deduplicates on, fixed at the first intent and stored with it."""
        return idempotency_key

    def proof_key(self, idempotency_key: str) -> str:
        """The remote key as proof mode shows it (it may only be chosen at the first send)."""
        return self.remote_key(idempotency_key)

    def upload_request(self, media: MediaFile, token: str) -> Request:
        raise NotImplementedError(f"{self.label} takes no media")

    def media_ref(self, http: httpx.Client, response: httpx.Response) -> Any:
        raise NotImplementedError(f"{self.label} takes no media")

    @abstractmethod
    def create_request(self, post: Post, key: str, refs: Sequence[Any], token: str) -> Request:
        """The one request that creates the post; ``key`` is stable across attempts."""

    def proof_requests(self, post: Post, key: str, media: Sequence[MediaFile]) -> list[Request]:
        """Exactly what publishing would send (the token is redacted when recorded)."""
        token = "<token>"
        uploads = [self.upload_request(m, token) for m in media]
        refs = [f"<media from request {i + 1}>" for i in range(len(uploads))]
        return [*uploads, self.create_request(post, key, refs, token)]

    # --- publish -------------------------------------------------------------------------

    def token(self, http: httpx.Client) -> str:
        return self.account.setting("token")

    def call(self, http: httpx.Client, build: Callable[[str], Request]) -> httpx.Response:
        """Send the request ``build`` makes with the account's token; raise the outcome of
        anything but a 2xx."""
        response = send(http, build(self.token(http)), self.account.deadline)
        if response.is_success:
            return response
        raise self.classify(response)

    def publish(self, http: httpx.Client, post: Post, key: str, media: Sequence[MediaFile],
                before_create: Callable[[], None]) -> Published:
        """Upload the media, then create the post: ``before_create`` runs right before the
        one call that can create it (the handler records its intent there)."""
        refs = [self.media_ref(http, self.call(http, partial(self._upload, m))) for m in media]
        before_create()
        try:
            response = self.call(http, lambda t: self.create_request(post, key, refs, t))
        except AlreadyPublished as exc:
            return exc.published
        try:
            return self.published(response, key)
        except (AttributeError, KeyError, TypeError, ValueError):
            # a 2xx whose body is not the post (HTML from a proxy, an error in a 200): the
            # post may well exist, so this is an answer lost, never a failure to retry blindly
            raise AnswerLost(f"{self.label} answered HTTP {response.status_code} to "
                             f"{self.shown_url(response)} without the post it created") from None

    def _upload(self, media: MediaFile, token: str) -> Request:
        return self.upload_request(media, token)

    @abstractmethod
    def published(self, response: httpx.Response, key: str) -> Published:
        """The remote id and URL from the create call's answer."""

    def existing(self, http: httpx.Client, key: str, since: datetime) -> Published | None:
        """After an attempt whose answer was lost (sent at ``since``): the post if the
        platform has it, None when creating it again cannot duplicate it. Raise NeedsPerson
        when neither can be known."""
        return None

    @abstractmethod
    def verify(self, http: httpx.Client) -> str:
        """Check the credentials with the platform; return who they belong to."""

    # --- classify ------------------------------------------------------------------------

    def classify(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        what = f"{self.label} ({self.shown_url(response)}) answered HTTP {status}"
        message = self.message(response)
        detail = f": {message}" if message else ""
        if status == 429:
            return RateLimited(f"{what} (rate limited){detail}",
                               snooze_until(self.reset_at(response)))
        if status == 408 or status >= 500:
            return Unavailable(f"{what}{detail}")
        if status in (401, 403):
            return CredentialsRejected(
                f"{what}: the credentials of account {self.account.name!r} were refused"
                f"{detail}")
        if 300 <= status < 400:
            return Rejected(f"{what} (a redirect, not followed for a POST): check the "
                            "account's base URL")
        return Rejected(f"{what}{detail}")

    def shown_url(self, response: httpx.Response) -> str:
        """The URL ``response`` answers, as errors show it (no secret in it)."""
        return self.account.shown_url(str(response.request.url))

    def message(self, response: httpx.Response) -> str:
        """The platform's own explanation of an error, with any secret it echoes back (the
        account's, or the token the request carried) cut out."""
        return scrub(self.explanation(response),
                     [*self.account.secrets.values(), _bearer(response.request)])

    def explanation(self, response: httpx.Response) -> str:
        """What the platform says went wrong, as it says it."""
        body = body_json(response)
        if isinstance(body, dict):
            for key in ("error_description", "message", "detail", "error", "title"):
                if isinstance(body.get(key), str):
                    return str(body[key])
        return excerpt(response)

    def reset_at(self, response: httpx.Response) -> datetime | None:
        return retry_after(response.headers.get("Retry-After"))


def scrub(text: str, secrets: Sequence[str | None]) -> str:
    """``text`` with every non-empty secret replaced: platforms do echo tokens back."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def _bearer(request: httpx.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value.split(" ", 1)[1].strip() if " " in value else None


def snooze_until(reset: datetime | None, now: datetime | None = None) -> datetime:
    """The platform's reset time, kept between DEFAULT_SNOOZE and MAX_SNOOZE from now."""
    now = now or utcnow()
    if reset is None or reset <= now:
        return now + DEFAULT_SNOOZE
    return min(reset, now + MAX_SNOOZE)


def retry_after(value: str | None, now: datetime | None = None) -> datetime | None:
    """When a ``Retry-After`` header (seconds or an HTTP date) says to come back."""
    now = now or utcnow()
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return now + timedelta(seconds=min(int(value), int(MAX_SNOOZE.total_seconds())))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return aware(when)


def epoch_seconds(value: str | None) -> datetime | None:
    """A reset header holding Unix seconds (X, Bluesky); None when it names no real time."""
    if not value or not value.strip().isascii() or not value.strip().isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(value.strip()), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def aware(when: datetime) -> datetime:
    """A header's time without a zone is UTC (HTTP times are)."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def content_type(media: Media) -> str:
    guessed, _ = mimetypes.guess_type(media.source)
    return guessed or "application/octet-stream"
