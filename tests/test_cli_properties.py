"""Property: whatever arguments, payloads, keys, ids and options it is given, ``aol`` exits
0, 1 or 2, says what went wrong in at most one line on stderr, never prints a traceback and
never falls back on its "internal error" line (every mistake is a known one).

Generated command lines run in-process through ``aol_core.cli.main`` on both databases, with
a fixed sequence of examples (derandomized) so that CI is not flaky. The worker runs with
``--burst`` (it exits once nothing is due) and the demo in a directory of its own, each with
fewer examples, as each runs a worker.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from aol_core.cli import main
from aol_core.testing import ActionHarness

#: what a real command line can carry: no NUL, and no lone surrogates but the ones Python
#: makes of undecodable bytes
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
               max_size=12) | st.builds(lambda t: t + "\udcff", st.text(max_size=3))
#: numbers at the edges of what the columns hold, and anything else
EDGES = st.sampled_from(["0", "1", "-1", "2147483647", "2147483648", "-2147483648",
                         "-2147483649", str(2**63 - 1), str(2**63), str(2**64), "1e400"])
NUMBER = EDGES | st.integers(-(2**70), 2**70).map(str) | st.floats().map(str) | TEXT
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(2**70), 2**70) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
PAYLOAD = (st.dictionaries(TEXT, JSON_VALUE, max_size=4).map(json.dumps)
           | JSON_VALUE.map(json.dumps) | TEXT
           | st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n))
WHEN = TEXT | st.sampled_from(["+30s", "+5m", "+99999999999d", "2026-01-01T00:00:00+00:00",
                               "2026-01-01T00:00:00", "9999-12-31T23:59:59+00:00"])
TYPE = st.sampled_from(["TEST_NOOP", "TEST_STRICT"]) | TEXT
ID = NUMBER


def joined(parts: Iterable[list[str]]) -> list[str]:
    return list(itertools.chain.from_iterable(parts))


def options(*choices: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.one_of(*choices), max_size=4).map(joined)


def flag(name: str, value: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[list[str]]:
    return st.just([name]) if value is None else value.map(lambda v: [name, v])


#: most enqueues get as far as the database: a valid type and payload, one odd option
SANE_ENQUEUE = st.tuples(st.just(["enqueue", "TEST_NOOP", "--force"]), st.one_of(
    flag("--payload", st.dictionaries(TEXT, JSON_VALUE, max_size=3).map(json.dumps)),
    flag("--key", TEXT), flag("--not-before", WHEN), flag("--priority", NUMBER),
    flag("--max-attempts", NUMBER)))
ENQUEUE = st.tuples(st.just(["enqueue"]), TYPE.map(lambda t: [t]), options(
    flag("--payload", PAYLOAD), flag("--key", TEXT), flag("--not-before", WHEN),
    flag("--priority", NUMBER), flag("--max-attempts", NUMBER), flag("--proof"),
    flag("--force"), flag("--json"),
))
COMMANDS = st.one_of(
    ENQUEUE,
    SANE_ENQUEUE,
    SANE_ENQUEUE,
    st.tuples(st.just(["actions", "list"]), options(
        flag("--status", st.sampled_from(["pending", "FAILED", "nope"]) | TEXT),
        flag("--type", TYPE), flag("--limit", NUMBER), flag("--json"))),
    st.tuples(st.sampled_from([["actions", "show"], ["actions", "cancel"],
                               ["actions", "retry"]]), ID.map(lambda i: [i]),
              options(flag("--json"))),
    st.tuples(st.just(["actions", "artifact"]), ID.map(lambda i: [i]), TEXT.map(lambda n: [n])),
    st.tuples(st.just(["control"]), st.sampled_from(
        [["status"], ["status", "--json"], ["pause"], ["resume"], ["kill"], ["revive"],
         ["proof", "on"], ["proof", "off"]]) | TEXT.map(lambda t: [t])),
    st.tuples(st.sampled_from([["health"], ["plugins"]]), options(flag("--json"))),
    st.tuples(st.just(["prune"]), options(
        flag("--older-than", TEXT | st.sampled_from(["7d", "0", "1e400d", "999999999d",
                                                     "99999999999999d"])),
        flag("--include-failed"))),
    # Token soup: the parser's own paths, in any order.
    st.tuples(st.lists(st.sampled_from(
        ["enqueue", "actions", "list", "show", "control", "health", "--json", "--db",
         "--payload", "--help", "-h", "--log-level", "db", "upgrade", "plugins"]) | TEXT,
        max_size=5)),
).map(joined)


#: a burst worker with any of its options: it runs what is due, then exits
BURST_WORKER = st.tuples(st.just(["worker", "--burst"]), options(
    flag("--concurrency", NUMBER), flag("--lease-seconds", NUMBER),
    flag("--batch-size", NUMBER), flag("--poll-interval", NUMBER),
    flag("--grace-seconds", NUMBER), flag("--name", TEXT), flag("--proof"),
    flag("--allow-broken-plugins"), flag("--log-level", TEXT | st.just("DEBUG")),
)).map(joined)
#: a file where the demo may be asked to make its directory
A_FILE = "a-file"
#: the demo's directory: new, existing, a file, nested, or odd
DEMO_DIR = st.sampled_from(["", ".", "demo", A_FILE, f"{A_FILE}/below", "a/b/c"]) | TEXT
DEMO = st.tuples(st.just(["demo"]), options(flag("--dir", DEMO_DIR))).map(joined)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``aol`` run in this process: its exit code and what it wrote on stderr. A logging
    handler it set up goes with it (it writes to this run's captured stderr)."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    capsys.readouterr()
    try:
        code: Any = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
    _, err = capsys.readouterr()
    return (0 if code is None else code), err


def assert_one_line_at_most(argv: list[str], code: int, err: str) -> None:
    """The property: exit code 0, 1 or 2, no traceback, no "internal error", and an error
    said in at most one line."""
    assert code in (0, 1, 2), (argv, err)
    assert "Traceback" not in err and "internal error" not in err, (argv, err)
    if code:
        assert len(err.strip().splitlines()) <= 1, (argv, err)


@pytest.fixture
def populated(harness: ActionHarness) -> None:
    """Actions in several states, so ids and filters find something."""
    for n in range(3):
        harness.enqueue("TEST_NOOP", {"n": n})
    harness.run("TEST_FAIL", {"mode": "permanent"})


@settings(max_examples=200, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=COMMANDS)
def test_any_command_line_exits_0_1_or_2_with_at_most_one_line_of_error(
        argv: list[str], populated: None, engine: Engine, db_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assume(not {"worker", "demo"} & set(argv))
    code, err = run(["--db", db_url, *argv], capsys)
    assert_one_line_at_most(argv, code, err)


@settings(max_examples=40, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=BURST_WORKER)
def test_any_burst_worker_command_line_exits_0_1_or_2_with_at_most_one_line_of_error(
        argv: list[str], harness: ActionHarness, db_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    harness.enqueue("TEST_NOOP", {})  # something to run (unless paused, or killed)
    code, err = run(["--db", db_url, *argv], capsys)
    assert_one_line_at_most(argv, code, err)


@settings(max_examples=30, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=DEMO)
def test_any_demo_command_line_exits_0_1_or_2_with_at_most_one_line_of_error(
        argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The demo makes its own SQLite database, in a directory under this test's."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / A_FILE).touch()
    given_dirs = [value for option, value in itertools.pairwise(argv) if option == "--dir"]
    where = Path(os.path.abspath(tmp_path / (given_dirs[-1] if given_dirs else "aol-demo")))
    assume(tmp_path in [where, *where.parents])  # never outside (given "..", or "/")
    code, err = run(argv, capsys)
    assert_one_line_at_most(argv, code, err)
