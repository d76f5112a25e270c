"""HTTP requests to AOL's probes and metrics, for the tests of ``aol serve`` and
``aol worker --http`` (a module of its own: it needs the ``serve`` extra's parser)."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

#: generous: servers import their stack and connect on a busy machine
START_SECONDS = 60


def get(url: str, token: str | None = None) -> tuple[int, str, str]:
    """Status, content type and body (the server listens before it prints its address, so
    a request made while it is still starting waits instead of being refused)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
    try:
        with urllib.request.urlopen(request, timeout=START_SECONDS) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["Content-Type"], refused.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page, by its name and its labels (sorted)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
