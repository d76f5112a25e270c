"""``aol serve``: /healthz, /readyz and /metrics from a real server process on loopback, on
SQLite and PostgreSQL; /metrics read with the Prometheus client library's own parser."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import timedelta
from typing import Any

from aol_core.testing import ActionHarness
from aol_core.timeutil import utcnow
from aol_core.worker_registry import WorkerIdentity, register
from helpers import aol
from probes import get, samples, served


def live_worker(harness: ActionHarness) -> None:
    with harness.engine.begin() as conn:
        register(conn, WorkerIdentity("w", "host", 1), versions={},
                 action_types=sorted(harness.registry.routes), degraded=False, now=utcnow(),
                 alive_for=timedelta(hours=1))


def test_healthz_answers_while_the_process_serves(harness: ActionHarness, db_url: str) -> None:
    with served(db_url) as url:
        status, _, body = get(f"{url}/healthz")

    assert (status, json.loads(body)) == (200, {"status": "ok"})


def test_readyz_is_503_naming_the_failed_checks(harness: ActionHarness, db_url: str) -> None:
    with served(db_url) as url:
        status, _, body = get(f"{url}/readyz")

    reply: dict[str, Any] = json.loads(body)
    assert status == 503
    assert reply["ready"] is False
    assert "a live worker" in [check["name"] for check in reply["failed"]]


def test_readyz_is_200_when_every_check_passes(harness: ActionHarness, db_url: str) -> None:
    live_worker(harness)
    with served(db_url) as url:
        status, _, body = get(f"{url}/readyz")

    assert (status, json.loads(body)) == (200, {"ready": True, "failed": []})


def test_metrics_count_unfinished_actions_by_status_and_type(
    harness: ActionHarness, db_url: str,
) -> None:
    live_worker(harness)
    harness.enqueue("TEST_NOOP", {})
    harness.enqueue("TEST_NOOP", {}, not_before=utcnow() + timedelta(hours=1))
    harness.enqueue("TEST_HOLD", {})
    harness.run_due(action_types=["TEST_HOLD"])

    with served(db_url) as url:
        status, content_type, text = get(f"{url}/metrics")

    assert status == 200 and content_type.startswith("text/plain; version=")
    found = samples(text)
    assert found["aol_actions", (("action_type", "TEST_NOOP"), ("status", "PENDING"))] == 2
    assert found["aol_actions", (("action_type", "TEST_NOOP"), ("status", "RUNNING"))] == 0
    assert found["aol_actions", (("action_type", "TEST_HOLD"), ("status", "HELD"))] == 1
    assert found["aol_workers_alive", ()] == 1
    assert found["aol_oldest_waiting_age_seconds", (("action_type", "TEST_NOOP"),)] >= 0
    assert ("aol_oldest_waiting_age_seconds", (("action_type", "TEST_HOLD"),)) not in found
    assert found["aol_control_flag", (("flag", "paused"),)] == 0


def test_a_probes_token_is_required_once_set(harness: ActionHarness, db_url: str) -> None:
    with served(db_url, AOL_SERVE_PROBES_TOKEN="s3cret") as url:
        without = get(f"{url}/metrics")
        wrong = get(f"{url}/healthz", token="guess")
        right = get(f"{url}/healthz", token="s3cret")

    assert (without[0], wrong[0], right[0]) == (401, 401, 200)
    assert "s3cret" not in without[2]


def test_serving_beyond_loopback_without_a_token_is_refused(db_url: str) -> None:
    done = aol("serve", "--bind", "0.0.0.0:0", db_url=db_url)

    assert done.returncode == 1
    assert done.stderr == (
        "aol: error: refusing to serve on 0.0.0.0 without a token: set AOL_SERVE_READ_TOKEN "
        "or AOL_SERVE_WRITE_TOKEN, or bind to a loopback address such as 127.0.0.1\n")


def test_a_bind_address_without_a_port_is_a_usage_error(db_url: str) -> None:
    done = aol("serve", "--bind", "localhost", db_url=db_url)

    assert done.returncode == 2
    assert "expected HOST:PORT such as 127.0.0.1:8080, not 'localhost'" in done.stderr


def test_a_taken_port_is_refused_in_one_line(harness: ActionHarness, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = aol("serve", "--bind", f"127.0.0.1:{port}", db_url=db_url)

    assert done.returncode == 1
    assert done.stderr.startswith(f"aol: error: cannot serve on 127.0.0.1:{port}: ")
    assert done.stderr.count("\n") == 1


def without_serve_extra(*args: str) -> subprocess.CompletedProcess[str]:
    """``aol ARGS`` in a process where the serve extra's packages cannot be imported."""
    code = ("import sys; sys.modules['uvicorn'] = None; from aol_core.cli import main; "
            f"sys.exit(main({list(args)!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_without_the_serve_extra_serve_says_what_to_install(db_url: str) -> None:
    done = without_serve_extra("--db", db_url, "serve")

    assert done.returncode == 1
    assert done.stderr == ("aol: error: aol serve needs the serve extra (uvicorn is missing): "
                           "pip install 'aol-core[serve]'\n")


def test_without_the_serve_extra_a_worker_refuses_http(harness: ActionHarness,
                                                       db_url: str) -> None:
    done = without_serve_extra("--db", db_url, "worker", "--burst", "--http", "127.0.0.1:0")

    assert done.returncode == 1
    assert done.stderr.endswith(
        "aol: error: serving a worker's /metrics needs the serve extra (uvicorn is missing): "
        "pip install 'aol-core[serve]'\n")
