"""A served ``aol serve`` and HTTP requests to it, for the tests of ``aol serve``, its
dashboard and ``aol worker --http`` (a module of its own: it needs the ``serve`` extra's parser)."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client.parser import text_string_to_metric_families

#: generous: servers import their stack and connect on a busy machine
START_SECONDS = 60


@contextmanager
def served(db_url: str, **env: str) -> Iterator[str]:
    """``aol serve`` on a free loopback port; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "aol_core.cli", "--db", db_url, "serve", "--bind", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed once bound, before serving
        assert "listening on " in first, process.communicate(timeout=START_SECONDS)
        yield first.split("listening on ")[1].split()[0]
    finally:
        process.terminate()
        process.communicate(timeout=START_SECONDS)


def get(url: str, token: str | None = None, *, json: bool = False) -> tuple[int, str, str]:
    """Status, content type and body (the server listens before it prints its address, so
    a request made while it is still starting waits instead of being refused); ``json``
    asks for JSON."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if json:
        headers["Accept"] = "application/json"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=START_SECONDS) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["Content-Type"], refused.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, by its name and its labels (sorted)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
