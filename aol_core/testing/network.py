"""A guard that fails a test when code opens a network connection where none is allowed
(a handler in proof mode must touch nothing outside the database).

Connections are refused at ``socket.connect``, the call every Python client ends in, so
``urllib``, ``http.client``, ``requests`` and ``httpx`` are all caught. Unix sockets and
connections made in C (libpq, the PostgreSQL driver) are not: the database stays usable.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class NetworkUsed(RuntimeError):
    """Raised inside the code that tried to connect, so a handler fails where it happened."""


class NetworkGuard:
    """While active, every ``socket.connect`` is refused and recorded in ``attempts``."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._lock = threading.Lock()

    @contextmanager
    def active(self) -> Iterator[NetworkGuard]:
        original = socket.socket.connect, socket.socket.connect_ex
        guard = self

        def connect(sock: Any, address: Any) -> None:
            guard._check(sock, address)
            original[0](sock, address)

        def connect_ex(sock: Any, address: Any) -> int:
            guard._check(sock, address)
            return original[1](sock, address)

        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        try:
            yield self
        finally:
            socket.socket.connect, socket.socket.connect_ex = original  # type: ignore[method-assign]

    def _check(self, sock: socket.socket, address: Any) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        with self._lock:
            self.attempts.append(str(address))
        raise NetworkUsed(f"network connection to {address} refused: no network here "
                          "(proof mode must touch nothing outside the database)")
