"""``aol worker --http``: a real worker process serving its own /healthz and /metrics on
loopback, on SQLite and PostgreSQL; /metrics read with the Prometheus client's parser."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aol_core.testing import ActionHarness
from probes import get, samples

#: generous: the machine is shared and busy
DEADLINE_SECONDS = 60


@contextmanager
def worker_serving(db_url: str, log: Path) -> Iterator[str]:
    """``aol worker --http 127.0.0.1:0``; yields the base URL it logs."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "aol_core.cli", "--db", db_url, "worker", "--name", "hw",
             "--http", "127.0.0.1:0"], stderr=stderr, env=os.environ.copy())
    try:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not (found := re.search(r"/metrics on (http://\S+)", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_SECONDS) == 0, log.read_text()


def metrics_once(url: str, done: tuple[str, tuple[tuple[str, str], ...]], value: float
                 ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The worker's metrics, once ``done`` has reached ``value``."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        found = samples(get(f"{url}/metrics")[2])
        if found.get(done) == value or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_worker_counts_its_attempts_by_type_and_outcome(
    harness: ActionHarness, db_url: str, tmp_path: Path,
) -> None:
    harness.enqueue("TEST_NOOP", {})
    harness.enqueue("TEST_NOOP", {})
    harness.enqueue("TEST_FAIL", {"mode": "permanent"})
    harness.enqueue("TEST_FAIL", {"mode": "error"}, max_attempts=1)

    with worker_serving(db_url, tmp_path / "worker.log") as url:
        found = metrics_once(url, ("aol_actions_succeeded_total",
                                   (("action_type", "TEST_NOOP"),)), 2)
        found = metrics_once(url, ("aol_actions_dead_lettered_total",
                                   (("action_type", "TEST_FAIL"),)), 1)

    noop, fail = (("action_type", "TEST_NOOP"),), (("action_type", "TEST_FAIL"),)
    assert found["aol_actions_started_total", noop] == 2
    assert found["aol_actions_succeeded_total", noop] == 2
    assert found["aol_actions_started_total", fail] == 2
    assert found["aol_actions_failed_total", fail] == 1
    assert found["aol_actions_dead_lettered_total", fail] == 1
    assert found["aol_handler_duration_seconds_count", noop] == 2
    assert found["aol_action_start_delay_seconds_count", fail] == 2


def test_a_worker_answers_healthz_while_it_runs(
    harness: ActionHarness, db_url: str, tmp_path: Path,
) -> None:
    with worker_serving(db_url, tmp_path / "worker.log") as url:
        status, _, body = get(f"{url}/healthz")

    assert (status, body) == (200, '{"status":"ok"}')
