"""A test kit for code that publishes with aol-social: real HTTP servers on 127.0.0.1 that
behave as each platform documents (idempotency, sessions, duplicates, rate limits), record
what they receive, and can be told to fail::

    with FakeMastodon() as mastodon:
        mastodon.fail("/api/v1/statuses", Reply(503))
        ...   # AOL_SOCIAL_MASTODON_BASE_URL=mastodon.url, AOL_SOCIAL_MASTODON_TOKEN=mastodon.token
        assert len(mastodon.posts) == 1

``Reply(accept_then_hang=True)`` lets the platform create the post and then never answers,
which is what a timeout after a successful send looks like to the client; a
``DrippingServer`` answers a byte at a time, forever, which only an overall deadline ends.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aol_core.testing.endpoint import FakeEndpoint as KitEndpoint
from aol_core.testing.endpoint import FakeServer, Received, Reply, reply_json

__all__ = [
    "DrippingServer", "FakeBluesky", "FakeEndpoint", "FakeLinkedIn", "FakeMastodon",
    "FakeServer", "FakeX", "NetworkGuard", "Received", "Reply", "network_guard", "reply_json",
]


class NetworkGuard:
    """Refuses every socket connection made from Python while it is on, and remembers where
    each went. It listens to the interpreter's audit events, so no client is patched; a
    database driver connecting from C (libpq) is not seen."""

    def __init__(self) -> None:
        self.refused: list[Any] = []
        self.active = False

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and event == "socket.connect":
            self.refused.append(args[1])
            raise ConnectionRefusedError(f"network guard: no connection to {args[1]!r}")


_GUARD = NetworkGuard()
_GUARD_INSTALLED = threading.Lock()


@contextmanager
def network_guard() -> Iterator[NetworkGuard]:
    """Within the block, any connection attempt fails and is listed in ``refused``."""
    if _GUARD_INSTALLED.acquire(blocking=False):
        sys.addaudithook(_GUARD.audit)  # an audit hook cannot be removed: installed once
    _GUARD.refused.clear()
    _GUARD.active = True
    try:
        yield _GUARD
    finally:
        _GUARD.active = False


class FakeEndpoint(KitEndpoint):
    """The kit's webhook receiver at the path the examples use (``/hooks/social``)."""

    def __init__(self) -> None:
        super().__init__("/hooks/social")


def _unauthorized(request: Received, token: str) -> Reply | None:
    if request.bearer() != token:
        return reply_json(401, {"error": "The access token is invalid"})
    return None


class FakeMastodon(FakeServer):
    """Statuses, media and an Idempotency-Key map: a repeated key returns the original."""

    def __init__(self, token: str = "mastodon-secret-token", max_characters: int = 500) -> None:
        super().__init__()
        self.token = token
        self.max_characters = max_characters
        self.posts: list[dict[str, Any]] = []
        self.media: list[Received] = []
        self.keys: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)

    def handle(self, request: Received) -> Reply:
        refused = _unauthorized(request, self.token)
        if refused:
            return refused
        if request.path == "/api/v2/media":
            self.media.append(request)
            return reply_json(200, {"id": f"m{len(self.media)}", "type": "image"})
        if request.path == "/api/v1/accounts/verify_credentials":
            return reply_json(200, {"acct": "alice"})
        if request.path == "/api/v2/instance":
            return reply_json(200, {"configuration": {"statuses": {
                "max_characters": self.max_characters}}})
        if request.path != "/api/v1/statuses":
            return reply_json(404, {"error": "Record not found"})
        key = request.header("Idempotency-Key")
        if key in self.keys:
            return reply_json(200, self.keys[key])
        body = request.json()
        status_id = str(next(self.ids))
        status = {"id": status_id, "url": f"{self.base_url}/@alice/{status_id}",
                  "content": body["status"], "visibility": body.get("visibility", "public"),
                  "media_ids": body.get("media_ids", [])}
        self.posts.append(status)
        if key:
            self.keys[key] = status
        return reply_json(200, status)


class FakeBluesky(FakeServer):
    """A PDS: app-password sessions whose refresh rotates both tokens, ``ExpiredToken`` for
    an expired access token, records by key, blobs."""

    DID = "did:plc:fakeuser"

    def __init__(self, handle: str = "alice.test", app_password: str = "app-pass-secret") -> None:
        super().__init__()
        self.account_handle, self.app_password = handle, app_password
        self.records: dict[str, dict[str, Any]] = {}
        self.blobs: list[Received] = []
        self.logins = 0
        self.refreshes = 0
        self.access: str | None = None
        self.refresh: str | None = None
        self.expired: set[str] = set()
        self.serial = itertools.count(1)

    @property
    def posts(self) -> list[dict[str, Any]]:
        return list(self.records.values())

    def expire_access_token(self) -> None:
        with self.lock:
            if self.access:
                self.expired.add(self.access)

    def _issue(self) -> Reply:
        n = next(self.serial)
        self.access, self.refresh = f"access-{n}", f"refresh-{n}"
        return reply_json(200, {"accessJwt": self.access, "refreshJwt": self.refresh,
                                "did": self.DID, "handle": self.account_handle})

    def handle(self, request: Received) -> Reply:
        method = request.path.removeprefix("/xrpc/")
        if method == "com.atproto.server.createSession":
            body = request.json()
            if (body.get("identifier"), body.get("password")) != (self.account_handle,
                                                                   self.app_password):
                return reply_json(401, {"error": "AuthenticationRequired",
                                        "message": "Invalid identifier or password"})
            self.logins += 1
            return self._issue()
        if method == "com.atproto.server.refreshSession":
            if request.bearer() != self.refresh or self.refresh is None:
                return reply_json(400, {"error": "ExpiredToken",
                                        "message": "Token has been revoked"})
            self.refreshes += 1
            return self._issue()
        token = request.bearer()
        if token in self.expired:
            return reply_json(400, {"error": "ExpiredToken", "message": "Token has expired"})
        if token != self.access:
            return reply_json(401, {"error": "InvalidToken", "message": "Bad token"})
        if method == "com.atproto.server.getSession":
            return reply_json(200, {"handle": self.account_handle, "did": self.DID})
        if method == "com.atproto.repo.uploadBlob":
            self.blobs.append(request)
            return reply_json(200, {"blob": {"$type": "blob",
                                             "ref": {"$link": f"bafkblob{len(self.blobs)}"},
                                             "mimeType": request.header("Content-Type"),
                                             "size": len(request.body)}})
        if method == "com.atproto.repo.getRecord":
            record = self.records.get(request.query.get("rkey", ""))
            if record is None:
                return reply_json(400, {"error": "RecordNotFound",
                                        "message": "Could not locate record"})
            return reply_json(200, record)
        if method == "com.atproto.repo.createRecord":
            body = request.json()
            rkey = body["rkey"]
            if rkey in self.records:
                return reply_json(400, {"error": "InvalidRequest",
                                        "message": "Record already exists"})
            uri = f"at://{self.DID}/{body['collection']}/{rkey}"
            self.records[rkey] = {"uri": uri, "cid": f"bafycid{rkey}", "value": body["record"]}
            return reply_json(200, {"uri": uri, "cid": f"bafycid{rkey}"})
        return reply_json(400, {"error": "MethodNotImplemented"})


class FakeLinkedIn(FakeServer):
    """The Posts API: an empty 201 with the URN in ``x-restli-id``; 422 DUPLICATE_POST for the
    same commentary again, naming the existing post."""

    def __init__(self, token: str = "linkedin-secret-token") -> None:
        super().__init__()
        self.token = token
        self.posts: list[dict[str, Any]] = []

    def handle(self, request: Received) -> Reply:
        refused = _unauthorized(request, self.token)
        if refused:
            return refused
        if request.path == "/v2/userinfo":
            return reply_json(200, {"sub": "abc123", "name": "Alice Example"})
        if not request.header("LinkedIn-Version") or request.header(
                "X-Restli-Protocol-Version") != "2.0.0":
            return reply_json(400, {"message": "missing versioned headers", "status": 400})
        body = request.json()
        for post in self.posts:
            if post["commentary"] == body["commentary"]:
                return reply_json(422, {"code": "DUPLICATE_POST", "status": 422,
                                        "message": f"Content is a duplicate of {post['urn']}"})
        urn = f"urn:li:share:{7000 + len(self.posts) + 1}"
        self.posts.append({**body, "urn": urn})
        return Reply(201, b"", {"x-restli-id": urn})


class FakeX(FakeServer):
    """``POST /2/tweets``: 201 with the id; 403 for duplicate content, naming nothing."""

    def __init__(self, token: str = "x-secret-token") -> None:
        super().__init__()
        self.token = token
        self.posts: list[dict[str, Any]] = []

    def handle(self, request: Received) -> Reply:
        refused = _unauthorized(request, self.token)
        if refused:
            return refused
        if request.path == "/2/users/me":
            return reply_json(200, {"data": {"id": "1", "username": "alice"}})
        text = request.json()["text"]
        if any(p["text"] == text for p in self.posts):
            return reply_json(403, {"title": "Forbidden", "status": 403, "type": "about:blank",
                                    "detail": "You are not allowed to create a Tweet with "
                                              "duplicate content."})
        post = {"id": str(1_800_000 + len(self.posts) + 1), "text": text}
        self.posts.append(post)
        return reply_json(201, {"data": post})


class DrippingServer:
    """Answers every request with 200 and its headers at once, then a body of a byte every
    ``interval`` seconds until closed: no single read ever times out, so only an overall
    deadline frees the client. ``paths`` lists the requests' paths."""

    def __init__(self, interval: float = 0.1) -> None:
        self.paths: list[str] = []
        self.closed = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                try:
                    while not server.closed.wait(interval):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:
                    pass  # the client gave up and hung up, as it should

            do_GET = do_POST = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DrippingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
