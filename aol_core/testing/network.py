"""A guard that fails a test when code opens a network connection where none is allowed
(a handler in proof mode must touch nothing outside the database).

Connections are refused at ``socket.connect``, the call every Python client ends in, so
``urllib``, ``http.client``, ``requests`` and ``httpx`` are all caught; datagrams sent without
a connection (``sendto``, ``sendmsg`` with an address: statsd, syslog, UDP APIs) are refused
too. Unix sockets and connections made in C (libpq, the PostgreSQL driver) are not: the
database stays usable.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class NetworkUsed(RuntimeError):
    """Raised inside the code that tried to connect, so a handler fails where it happened."""


#: the socket methods that reach another machine: connecting, or sending a datagram to one
_GUARDED = ("connect", "connect_ex", "sendto", "sendmsg")


def _destination(method: str, args: tuple[Any, ...]) -> Any:
    """Where a call of ``method`` with ``args`` goes (None: a connected socket's peer, which
    its refused ``connect`` already accounted for)."""
    if method in ("connect", "connect_ex"):
        return args[0]
    if method == "sendto":  # sendto(data, address) or sendto(data, flags, address)
        return args[-1]
    return args[3] if len(args) > 3 else None  # sendmsg(buffers, ancdata, flags, address)


class NetworkGuard:
    """While active, every network connection or datagram (loopback too) is refused and recorded in
    ``attempts``."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._lock = threading.Lock()

    @contextmanager
    def active(self) -> Iterator[NetworkGuard]:
        originals = {name: getattr(socket.socket, name) for name in _GUARDED}
        for name, original in originals.items():
            setattr(socket.socket, name, self._guarded(name, original))
        try:
            yield self
        finally:
            for name, original in originals.items():
                setattr(socket.socket, name, original)

    def _guarded(self, name: str, original: Any) -> Any:
        def method(sock: socket.socket, *args: Any) -> Any:
            address = _destination(name, args)
            if address is not None:
                self._check(sock, address)
            return original(sock, *args)
        return method

    def _check(self, sock: socket.socket, address: Any) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        with self._lock:
            self.attempts.append(str(address))
        raise NetworkUsed(f"network connection to {address} refused: no network here "
                          "(proof mode must touch nothing outside the database)")
