"""Deliver one post to the publishing endpoint over HTTP, with only the standard library.

Outcomes map onto AOL's retry rules: 2xx is delivered; 408, 429, 5xx, timeouts and
connection failures raise ``RetryableError`` (with ``Retry-After`` as the delay when given);
any other status raises ``PermanentError``. Redirects are not followed: a POST must not be
silently turned into a GET or sent somewhere else.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from aol_core import PermanentError, RetryableError, utcnow

ENDPOINT_ENV = "AOL_SOCIAL_ENDPOINT"
TOKEN_ENV = "AOL_SOCIAL_TOKEN"
TIMEOUT_ENV = "AOL_SOCIAL_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
#: longest Retry-After honoured; a larger value is cut to this
MAX_RETRY_AFTER = 24 * 3600.0
#: bytes of a response read; a longer body is kept as a text excerpt
MAX_RESPONSE_BYTES = 16 * 1024
EXCERPT_CHARS = 500
USER_AGENT = "aol-social/0.1"
RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Endpoint:
    """Where and how to post, read from the environment."""

    url: str
    token: str | None
    timeout: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Endpoint:
        env = os.environ if environ is None else environ
        url = env.get(ENDPOINT_ENV, "").strip()
        if not url:
            raise PermanentError(
                f"{ENDPOINT_ENV} is not set: set it to the URL of the publishing endpoint "
                "(webhook) that receives posts, or run in proof mode to record them without "
                "posting"
            )
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(
                f"{ENDPOINT_ENV} must be an http:// or https:// URL, not {redact(url)!r}"
            )
        raw_timeout = env.get(TIMEOUT_ENV, "").strip()
        try:
            timeout = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT
        except ValueError:
            timeout = math.nan
        if not timeout > 0 or math.isinf(timeout):
            raise PermanentError(
                f"{TIMEOUT_ENV} must be a positive number of seconds, not {raw_timeout!r}"
            )
        token = env.get(TOKEN_ENV, "").strip() or None
        return cls(url, token, timeout)

    @property
    def safe_url(self) -> str:
        return redact(self.url)


@dataclass(frozen=True)
class Delivered:
    status: int
    response: Any


def redact(url: str) -> str:
    """The URL without credentials or query string, safe for logs and errors."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx then surfaces as an HTTPError


_opener = urllib.request.build_opener(_NoRedirect)


def deliver(endpoint: Endpoint, body: bytes, idempotency_key: str) -> Delivered:
    """POST ``body`` (JSON) once; ``Idempotency-Key`` lets the receiver drop repeats."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Accept": "application/json",
        "Idempotency-Key": idempotency_key,
        "User-Agent": USER_AGENT,
    }
    if endpoint.token:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    request = urllib.request.Request(endpoint.url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=endpoint.timeout) as response:
            status = int(response.status)
            raw = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise _refusal(endpoint, exc) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise RetryableError(
            f"could not reach {endpoint.safe_url} or got no answer: "
            f"{type(reason).__name__}: {reason}"
        ) from None
    return Delivered(status, parse_response(raw))


def _refusal(endpoint: Endpoint, exc: urllib.error.HTTPError) -> Exception:
    try:
        excerpt = _excerpt(exc.read(EXCERPT_CHARS * 4).decode("utf-8", errors="replace"))
    except (OSError, ValueError, AttributeError, http.client.HTTPException):
        excerpt = ""
    finally:
        with contextlib.suppress(Exception):
            exc.close()
    status = f"{exc.code} {exc.reason}".strip()
    detail = f": {excerpt}" if excerpt else ""
    if exc.code in RETRYABLE_STATUSES or 500 <= exc.code < 600:
        return RetryableError(
            f"{endpoint.safe_url} answered HTTP {status}{detail}",
            delay=retry_after(exc.headers),
        )
    if 300 <= exc.code < 400:
        location = exc.headers.get("Location", "?") if exc.headers else "?"
        return PermanentError(
            f"{endpoint.safe_url} answered HTTP {status} (redirect to {redact(location)}); "
            f"redirects are not followed for a POST: set {ENDPOINT_ENV} to the final URL"
        )
    return PermanentError(f"{endpoint.safe_url} refused the post with HTTP {status}{detail}")


def retry_after(headers: Message | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or utcnow())).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_response(raw: bytes) -> Any:
    """The response as JSON when it is a short JSON document, else a text excerpt."""
    text = raw[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")
    if len(raw) <= MAX_RESPONSE_BYTES and "\\u0000" not in text:
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError:
            pass
    return _excerpt(text)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: PostgreSQL's jsonb refuses them


def _excerpt(text: str) -> str:
    text = text.replace("\x00", "").strip()
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"
