"""HTTP for the providers: requests as plain data (so proof mode can record exactly what
would be sent), one place that sends them, and the line between "never sent" and "sent, but
the answer was lost" that decides whether a retry may post twice.

Redirects are never followed: a POST must not be turned into a GET or sent somewhere else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from aol_social.config import DEADLINE_ENV, redact_url

USER_AGENT = "aol-social/0.2"
REDACTED = "<redacted>"
#: headers whose values are secrets, in any request of any provider
SECRET_HEADERS = frozenset({"authorization", "x-aol-signature"})
EXCERPT_CHARS = 500
#: most of an answer's body kept (error excerpts, JSON answers): a larger one is cut there
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """A file sent as multipart/form-data (Mastodon's media API)."""

    field: str
    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class Request:
    """One HTTP request, with its secrets in ``headers`` (``redacted()`` hides them)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    form: Mapping[str, str] = field(default_factory=dict)
    upload: Upload | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    #: the URL's path is a secret (a webhook's): shown as ``scheme://host/…``
    secret_path: bool = False

    @property
    def shown_url(self) -> str:
        """The URL as proofs and errors show it: no credentials, query or secret path."""
        return redact_url(self.url, keep_path=not self.secret_path)

    def redacted(self) -> dict[str, Any]:
        """The request as proof mode records it: secrets replaced, binary bodies summarised."""
        record: dict[str, Any] = {
            "method": self.method,
            "url": self.shown_url,
            "headers": {k: REDACTED if k.lower() in SECRET_HEADERS else v
                        for k, v in sorted(self.headers.items())},
        }
        if self.params:
            record["params"] = dict(self.params)
        if self.json is not None:
            record["json"] = self.json
        if self.content is not None:
            record["body"] = _describe_bytes(self.content)
        if self.form:
            record["form"] = dict(self.form)
        if self.upload is not None:
            record["file"] = {"field": self.upload.field, "filename": self.upload.filename,
                              "content_type": self.upload.content_type,
                              "body": _describe_bytes(self.upload.content)}
        return record


def _describe_bytes(content: bytes) -> str:
    try:
        return content.decode()
    except UnicodeDecodeError:
        return f"<{len(content)} bytes>"


class NotSent(Exception):
    """The request never reached the platform (no connection): sending again is safe."""


class AnswerLost(Exception):
    """The request may have reached the platform, but no answer came back."""


def client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                        headers={"User-Agent": USER_AGENT})


def send(http: httpx.Client, request: Request, deadline: float) -> httpx.Response:
    """Send once and read the answer within ``deadline`` seconds overall (the client's timeout
    only bounds each read: a server dripping a byte at a time would hold the worker forever),
    keeping at most MAX_BODY_BYTES of its body. Raise NotSent or AnswerLost when no answer
    came, naming the URL only."""
    files = None
    if request.upload is not None:
        u = request.upload
        files = {u.field: (u.filename, u.content, u.content_type)}
    started = time.monotonic()
    try:
        with http.stream(
            request.method, request.url, headers=dict(request.headers),
            json=request.json, content=request.content, data=dict(request.form) or None,
            files=files, params=dict(request.params) or None,
        ) as response:
            body = read_within(response, started + deadline, MAX_BODY_BYTES)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
            httpx.UnsupportedProtocol) as exc:
        raise NotSent(f"could not reach {request.shown_url}: "
                      f"{type(exc).__name__}: {exc}") from None
    except httpx.HTTPError as exc:
        raise AnswerLost(f"sent to {request.shown_url} but got no answer: "
                         f"{type(exc).__name__}: {exc}") from None
    except DeadlineExceeded:
        raise AnswerLost(f"sent to {request.shown_url} but its answer did not arrive within "
                         f"{deadline:g} seconds ({DEADLINE_ENV})") from None
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length")]  # body is decoded
    return httpx.Response(response.status_code, headers=headers, content=body,
                          request=response.request)


class DeadlineExceeded(Exception):
    """The answer was still arriving when the request's overall deadline passed."""


def read_within(response: httpx.Response, deadline: float, cap: int) -> bytes:
    """The body, read until it ends or holds more than ``cap`` bytes (only the first ``cap``
    + 1 are kept); DeadlineExceeded when ``time.monotonic()`` passes ``deadline`` first."""
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise DeadlineExceeded
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            break
    return b"".join(chunks)[:cap + 1]


def body_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def excerpt(response: httpx.Response) -> str:
    text = response.text.replace("\x00", "").strip()
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"
