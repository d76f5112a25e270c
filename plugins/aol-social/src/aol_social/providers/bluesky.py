"""Bluesky (any AT Protocol PDS): an app-password session, ``createRecord`` with a record key
derived from the action, and ``getRecord`` to find a post whose answer was lost.

The session lives in the plugin's table and is refreshed (``refreshSession`` rotates both
tokens) under a per-account lock, so workers never spend one refresh token twice and never log
in per post: the platform locks accounts that create sessions too often.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from aol_core import utcnow
from sqlalchemy.engine import Engine

from aol_social import store
from aol_social.config import Account
from aol_social.limits import graphemes, links, utf8_bytes
from aol_social.payload import Post
from aol_social.providers.base import (
    CredentialsRejected,
    MediaFile,
    Provider,
    Published,
    Rejected,
    Unavailable,
    epoch_seconds,
)
from aol_social.providers.transport import Request, body_json, send

MAX_GRAPHEMES = 300
MAX_BYTES = 3_000
COLLECTION = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
#: proof mode's stand-in: the real key is a TID made when the first real attempt records intent
PROOF_KEY = "<record key: a TID made at the first attempt>"
#: the PDS's answers to a token it will not take any more: the session must be renewed
_STALE_SESSION = ("ExpiredToken", "InvalidToken")


def record_key(idempotency_key: str, now: datetime) -> str:
    """A TID (the record key a post needs) from the time of the first intent and the action:
    the same on every attempt, because the handler stores it with the intent."""
    micros = int(now.timestamp() * 1_000_000) & ((1 << 53) - 1)
    clock = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:2]) & 0x3FF
    value = (micros << 10) | clock
    chars = []
    for _ in range(13):
        chars.append(_TID_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def key_time(rkey: str) -> datetime:
    """The time a record key was made at: the post's ``createdAt``, identical on retries."""
    value = 0
    for char in rkey:
        value = value * 32 + _TID_ALPHABET.index(char)
    return datetime.fromtimestamp((value >> 10) / 1_000_000, UTC)


def facets(text: str) -> list[dict[str, Any]]:
    """Links as rich-text facets, positioned by UTF-8 byte offsets as the lexicon requires."""
    return [{"index": {"byteStart": link.byte_start, "byteEnd": link.byte_end},
             "features": [{"$type": "app.bsky.richtext.facet#link", "uri": link.url}]}
            for link in links(text)]


class Bluesky(Provider):
    name: ClassVar[str] = "bluesky"
    label: ClassVar[str] = "Bluesky"
    max_media_bytes: ClassVar[int] = 1_000_000

    def __init__(self, account: Account, engine: Engine | None = None) -> None:
        super().__init__(account)
        self.engine = engine

    def text_problems(self, post: Post) -> list[str]:
        count, size = graphemes(post.content), utf8_bytes(post.content)
        if count > MAX_GRAPHEMES or size > MAX_BYTES:
            return [f"content is {count} graphemes and {size} bytes; Bluesky accepts at most "
                    f"{MAX_GRAPHEMES} graphemes and {MAX_BYTES} bytes"]
        return []

    def remote_key(self, idempotency_key: str) -> str:
        return record_key(idempotency_key, utcnow())

    def proof_key(self, idempotency_key: str) -> str:
        return PROOF_KEY

    def _xrpc(self, method: str) -> str:
        return f"{self.account.base_url}/xrpc/{method}"

    def upload_request(self, media: MediaFile, token: str) -> Request:
        return Request("POST", self._xrpc("com.atproto.repo.uploadBlob"),
                       headers={"Authorization": f"Bearer {token}",
                                "Content-Type": media.content_type},
                       content=media.content)

    def media_ref(self, http: httpx.Client, response: httpx.Response) -> Any:
        return body_json(response)["blob"]

    def create_request(self, post: Post, key: str, refs: Sequence[Any], token: str) -> Request:
        record: dict[str, Any] = {
            "$type": COLLECTION,
            "text": post.content,
            "createdAt": (PROOF_KEY if key == PROOF_KEY
                          else key_time(key).isoformat().replace("+00:00", "Z")),
        }
        found = facets(post.content)
        if found:
            record["facets"] = found
        if refs:
            record["embed"] = {"$type": "app.bsky.embed.images", "images": [
                {"alt": m.alt, "image": ref} for m, ref in zip(post.media, refs, strict=True)]}
        return Request("POST", self._xrpc("com.atproto.repo.createRecord"),
                       headers={"Authorization": f"Bearer {token}"},
                       json={"repo": self.account.setting("handle"), "collection": COLLECTION,
                             "rkey": key, "record": record})

    def published(self, response: httpx.Response, key: str) -> Published:
        return Published(str(body_json(response)["uri"]), self._post_url(key))

    def _post_url(self, key: str) -> str:
        return f"https://bsky.app/profile/{self.account.setting('handle')}/post/{key}"

    def publish(self, http: httpx.Client, post: Post, key: str, media: Sequence[MediaFile],
                before_create: Callable[[], None]) -> Published:
        """A refusal or a 5xx may hide a record the PDS did write: a gateway's 504 after the
        write, or a retry meeting the record an earlier attempt created under the same key
        (the PDS refuses the key as taken). The record key is this action's alone, so a
        record under it is the post: asked for before the refusal is believed."""
        try:
            return super().publish(http, post, key, media, before_create)
        except (Rejected, Unavailable):
            found = self.existing(http, key, utcnow())
            if found is None:
                raise
            return found

    def existing(self, http: httpx.Client, key: str, since: datetime) -> Published | None:
        response = self.call(http, lambda t: Request(
            "GET", self._xrpc("com.atproto.repo.getRecord"),
            headers={"Authorization": f"Bearer {t}"},
            params={"repo": self.account.setting("handle"), "collection": COLLECTION,
                    "rkey": key}), missing_ok=True)
        if response.status_code != 200:
            return None  # RecordNotFound: creating it with the same key is the first post
        return Published(str(body_json(response)["uri"]), self._post_url(key), existing=True)

    def verify(self, http: httpx.Client) -> str:
        response = self.call(http, lambda t: Request(
            "GET", self._xrpc("com.atproto.server.getSession"),
            headers={"Authorization": f"Bearer {t}"}))
        return f"@{body_json(response).get('handle', '?')}"

    def explanation(self, response: httpx.Response) -> str:
        body = body_json(response)
        if isinstance(body, dict) and "error" in body:
            return f"{body['error']}: {body.get('message', '')}".rstrip(": ")
        return super().explanation(response)

    def reset_at(self, response: httpx.Response) -> datetime | None:
        return epoch_seconds(response.headers.get("ratelimit-reset")) or super().reset_at(
            response)

    # --- the session -----------------------------------------------------------------------

    def call(self, http: httpx.Client, build: Callable[[str], Request],
             missing_ok: bool = False) -> httpx.Response:
        """Send with the session's access token; when the PDS refuses it (``ExpiredToken``,
        or ``InvalidToken`` for a session it no longer knows) renew the session once and
        resend: the refused call created nothing. ``missing_ok`` lets RecordNotFound through."""
        token = self.token(http)
        response = send(http, build(token), self.account.deadline)
        if _error(response) in _STALE_SESSION:
            token = self._renew(http, expired=token)
            response = send(http, build(token), self.account.deadline)
        if response.is_success or (missing_ok and _error(response) == "RecordNotFound"):
            return response
        raise self.classify(response)

    def token(self, http: httpx.Client) -> str:
        stored = store.load_session(self._engine(), self.account.name)
        return stored.access_jwt or self._renew(http, expired=None)

    def _renew(self, http: httpx.Client, expired: str | None) -> str:
        with store.session_lock(self._engine(), self.account.name) as lock:
            current = lock.current
            if current.access_jwt and current.access_jwt != expired:
                return current.access_jwt  # another worker renewed it while we waited
            session = None
            if current.refresh_jwt:
                response = send(http, Request(
                    "POST", self._xrpc("com.atproto.server.refreshSession"),
                    headers={"Authorization": f"Bearer {current.refresh_jwt}"}),
                    self.account.deadline)
                if response.is_success:
                    session = _session(response)
                elif _error(response) not in _STALE_SESSION:
                    raise self.classify(response)
            if session is None:
                session = self._login(http)
            lock.save(session)
            assert session.access_jwt is not None
            return session.access_jwt

    def _login(self, http: httpx.Client) -> store.StoredSession:
        response = send(http, Request(
            "POST", self._xrpc("com.atproto.server.createSession"),
            json={"identifier": self.account.setting("handle"),
                  "password": self.account.setting("app_password")}), self.account.deadline)
        if response.status_code in (400, 401) and _error(response) != "ExpiredToken":
            raise CredentialsRejected(
                f"Bluesky refused the app password of account {self.account.name!r}: "
                f"{self.message(response)}")
        if not response.is_success:
            raise self.classify(response)
        return _session(response)

    def _engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("the Bluesky provider needs the database to keep its session")
        return self.engine


def _error(response: httpx.Response) -> str | None:
    if response.status_code not in (400, 401):
        return None
    body = body_json(response)
    return str(body.get("error")) if isinstance(body, dict) and "error" in body else None


def _session(response: httpx.Response) -> store.StoredSession:
    body = body_json(response)
    return store.StoredSession(body["did"], body["accessJwt"], body["refreshJwt"])
