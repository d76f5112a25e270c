"""A real HTTP endpoint on 127.0.0.1 that records what it receives and answers as scripted:
test a handler that calls an outside service against it rather than by patching the client.
Point the plugin's endpoint setting at ``FakeEndpoint.url``::

    with FakeEndpoint("/hooks/mail") as endpoint:
        endpoint.reply(Reply(503), Reply(201))
        ...
        assert endpoint.received[0].headers["Idempotency-Key"] == key
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b'{"id": "post-1"}'
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeEndpoint:
    """Answers each POST with the next scripted reply (200 with a JSON id once they run out).
    ``url`` is the server's address followed by ``path``."""

    def __init__(self, path: str = "/") -> None:
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint.lock:
                    endpoint.received.append(
                        Received("POST", self.path, dict(self.headers.items()), body)
                    )
                    reply = endpoint.replies.popleft() if endpoint.replies else Reply()
                if reply.delay:
                    threading.Event().wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected in some tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def __enter__(self) -> FakeEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
