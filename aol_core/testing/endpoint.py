"""Real HTTP servers on 127.0.0.1 that record what they receive and answer as scripted: test
a handler that calls an outside service against one rather than by patching the client.

``FakeEndpoint`` is a webhook receiver; point the plugin's endpoint setting at its ``url``::

    with FakeEndpoint("/hooks/mail") as endpoint:
        endpoint.reply(Reply(503), Reply(201))
        ...
        assert endpoint.received[0].header("Idempotency-Key") == key

``FakeServer`` is the base for a fake of a whole service: subclass it and answer each request
in ``handle`` as the service documents; ``fail(path, ...)`` makes the next requests to a path
fail instead. ``Reply(accept_then_hang=True)`` handles the request and then never answers,
which is what a timeout after a successful call looks like to the client.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b'{"id": "post-1"}'
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    delay: float = 0.0
    #: handle the request as the service would, then never answer
    accept_then_hang: bool = False


def reply_json(status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
    """A reply whose body is ``value`` as JSON."""
    return Reply(status, json.dumps(value).encode(), {**JSON, **(headers or {})})


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """The header's value, whatever the case of its name."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def bearer(self) -> str | None:
        value = self.header("Authorization") or ""
        return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


class FakeServer:
    """Dispatches each request to ``handle`` unless a fault is queued for its path."""

    path = "/"

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.faults: dict[str, deque[Reply]] = {}
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.connections = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with fake.lock:
                    fake.connections += 1

            def _any(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = Received(self.command, parts.path,
                                   dict(urllib.parse.parse_qsl(parts.query)),
                                   dict(self.headers.items()), body)
                with fake.lock:
                    fake.received.append(request)
                    queued = fake.faults.get(parts.path)
                    fault = queued.popleft() if queued else None
                    reply = fake.handle(request) if fault is None or fault.accept_then_hang \
                        else fault
                if fault is not None and fault.accept_then_hang:
                    fake.released.wait()
                    return
                if reply.delay:
                    fake.released.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected in some tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def handle(self, request: Received) -> Reply:
        """The service's answer to ``request`` (called with ``self.lock`` held)."""
        raise NotImplementedError

    def fail(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to ``path`` with ``replies`` instead of handling them."""
        with self.lock:
            self.faults.setdefault(path, deque()).extend(replies)

    def requests_to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class FakeEndpoint(FakeServer):
    """A webhook receiver at ``path`` that keeps one delivery per ``Idempotency-Key`` in
    ``posts``, as receivers must. ``reply()`` scripts its next answers (200 with a JSON id
    once they run out). Another path is answered 404 and is no delivery, as a real receiver
    would, so a plugin calling the wrong URL fails its tests."""

    def __init__(self, path: str = "/") -> None:
        super().__init__()
        self.path = path
        self.posts: dict[str, Received] = {}

    def reply(self, *replies: Reply) -> None:
        self.fail(self.path, *replies)

    def handle(self, request: Received) -> Reply:
        if request.path != self.path:
            return reply_json(404, {"error": f"no receiver at {request.path}"})
        self.posts.setdefault(request.header("Idempotency-Key") or "", request)
        return Reply()
