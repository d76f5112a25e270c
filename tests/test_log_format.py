"""``AOL_LOG_FORMAT=json``: one JSON object per log line, with an action's fields as fields."""

from __future__ import annotations

import json
import logging
import sys

from aol_core.logformat import JsonLines
from aol_core.testing import ActionHarness
from helpers import aol


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("aol.worker").makeRecord(
        "aol.worker", logging.WARNING, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_carries_time_level_logger_message_and_the_actions_fields() -> None:
    line = json.loads(JsonLines().format(record(
        "action 7 failed", worker="w1", action_id=7, action_type="SEND", attempt=2,
        event="retry", duration_ms=12.5)))

    assert set(line) == {"time", "level", "logger", "message", "worker", "action_id",
                         "action_type", "attempt", "event", "duration_ms"}
    assert line["time"].endswith("+00:00")
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING", "aol.worker", "action 7 failed")
    assert (line["action_id"], line["attempt"], line["duration_ms"]) == (7, 2, 12.5)


def test_a_line_about_no_action_leaves_the_action_fields_out() -> None:
    line = json.loads(JsonLines().format(record("heartbeat failed")))

    assert set(line) == {"time", "level", "logger", "message"}


def test_a_logged_exception_is_one_field_and_the_line_stays_one_line() -> None:
    try:
        raise ValueError("broken\nacross lines")
    except ValueError:
        failing = record("it broke")
        failing.exc_info = sys.exc_info()
    text = JsonLines().format(failing)

    assert "\n" not in text
    assert "ValueError: broken" in json.loads(text)["exception"]


def test_the_worker_logs_one_json_object_a_line_with_each_attempts_fields(
    harness: ActionHarness, db_url: str,
) -> None:
    action_id = harness.enqueue("TEST_FAIL", {"mode": "permanent"})

    done = aol("worker", "--burst", "--name", "json-worker", db_url=db_url,
               env={"AOL_LOG_FORMAT": "json"})

    assert done.returncode == 0, done.stderr
    lines = [json.loads(text) for text in done.stderr.splitlines()]
    (attempt,) = [line for line in lines if line.get("action_id") == action_id]
    assert attempt["worker"] == "json-worker"
    assert (attempt["action_type"], attempt["attempt"], attempt["event"]) == (
        "TEST_FAIL", 1, "failed")
    assert attempt["duration_ms"] >= 0
    assert next(line["event"] for line in lines if "event" in line) == "started"


def test_the_default_log_stays_readable_text(harness: ActionHarness, db_url: str) -> None:
    done = aol("worker", "--burst", db_url=db_url)

    assert done.returncode == 0, done.stderr
    assert " INFO    aol.worker: worker " in done.stderr.splitlines()[0]


def test_an_unknown_log_format_is_refused_in_one_line(db_url: str) -> None:
    done = aol("health", db_url=db_url, env={"AOL_LOG_FORMAT": "xml"})

    assert done.returncode == 1
    assert done.stderr == "aol: error: AOL_LOG_FORMAT must be one of text, json, not 'xml'\n"
