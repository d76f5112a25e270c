"""Images to attach: read from disk or fetched from their URL, with the size checked against the
platform's limit before anything is uploaded."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
import urllib.parse
from collections.abc import Sequence

import httpx

from aol_social.config import DEADLINE_ENV, redact_url
from aol_social.payload import Media
from aol_social.providers.base import MediaFile, Provider, Rejected, content_type
from aol_social.providers.transport import AnswerLost, DeadlineExceeded, NotSent, read_within

#: set to 1 to fetch media from loopback, private and link-local addresses
ALLOW_PRIVATE_ENV = "AOL_SOCIAL_MEDIA_ALLOW_PRIVATE"


def load(provider: Provider, media: Sequence[Media], http: httpx.Client | None) -> list[MediaFile]:
    """The images' bytes; without ``http`` (proof mode) a URL is not fetched and its upload is
    recorded with a placeholder body."""
    return [_load_one(provider, m, http) for m in media]


def _load_one(provider: Provider, media: Media, http: httpx.Client | None) -> MediaFile:
    kind = content_type(media)
    if media.path is not None:
        try:
            with open(media.path, "rb") as handle:
                content = handle.read(provider.max_media_bytes + 1)
        except OSError as exc:
            raise Rejected(f"media {media.path}: {exc.strerror or exc}") from None
    elif http is None:
        return MediaFile(media, f"<the bytes of {media.url}>".encode(), kind)
    else:
        content, kind = _fetch(provider, str(media.url), http, kind)
    if len(content) > provider.max_media_bytes:
        raise Rejected(f"media {shown_source(media)} is larger than the {provider.max_media_bytes} "
                       f"bytes {provider.label} accepts")
    return MediaFile(media, content, kind)


def _fetch(provider: Provider, url: str, http: httpx.Client, kind: str) -> tuple[bytes, str]:
    """The image's bytes (at most one more than the platform accepts, to tell it is too
    large), read within the account's overall deadline."""
    shown = redact_url(url)
    refuse_private_host(url)
    deadline = provider.account.deadline
    try:
        with http.stream("GET", url) as response:
            if not response.is_success:
                raise Rejected(f"media {shown} answered HTTP {response.status_code}")
            content = read_within(response, time.monotonic() + deadline,
                                  provider.max_media_bytes)
            return content, response.headers.get("Content-Type", kind).split(";")[0]
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise NotSent(f"could not fetch media {shown}: {type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise AnswerLost(f"fetching media {shown} failed: {type(exc).__name__}") from None
    except DeadlineExceeded:
        raise AnswerLost(f"fetching media {shown} took longer than {deadline:g} seconds "
                         f"({DEADLINE_ENV})") from None


def refuse_private_host(url: str) -> None:
    """Refuse (permanently, naming the host) a media URL whose host resolves to a loopback,
    private, link-local or unspecified address: a payload must not make the worker fetch from
    inside its own network (SSRF). ``AOL_SOCIAL_MEDIA_ALLOW_PRIVATE=1`` allows it. A host
    that does not resolve is left to the fetch, which reports it as unreachable."""
    if os.environ.get(ALLOW_PRIVATE_ENV, "").strip() == "1":
        return
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return
    for address in sorted(addresses):
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified:
            raise Rejected(f"media host {host} resolves to {ip}, a loopback, private or "
                           f"link-local address: refused (set {ALLOW_PRIVATE_ENV}=1 to allow)")


def shown_source(media: Media) -> str:
    """Where an image comes from, as errors show it: a URL without its query or fragment
    (signed URLs carry their signature there)."""
    return media.path or redact_url(media.url or "")
