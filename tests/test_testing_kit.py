"""The test kit plugin authors use: the network guard, the fixed clock, the loopback endpoint,
the contract's inherited checks, and the pytest fixtures (run in a pytester sandbox)."""

from __future__ import annotations

import socket
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from aol_core import utcnow
from aol_core.config import Settings
from aol_core.models import Status
from aol_core.plugins import load_plugins
from aol_core.testing import (
    ActionHarness,
    FakeEndpoint,
    FixedClock,
    HandlerContract,
    NetworkGuard,
    NetworkUsed,
)
from helpers import install

pytest_plugins = ("pytester",)


def test_the_guard_refuses_and_records_a_tcp_connection() -> None:
    guard = NetworkGuard()
    with FakeEndpoint() as endpoint, guard.active(), pytest.raises(NetworkUsed):
        urllib.request.urlopen(endpoint.url, data=b"{}", timeout=5)
    assert len(guard.attempts) == 1
    assert endpoint.received == []


def test_the_guard_lets_unix_sockets_through(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "s"))
    server.listen()
    with NetworkGuard().active() as guard, socket.socket(socket.AF_UNIX) as client:
        client.connect(str(tmp_path / "s"))
    server.close()
    assert guard.attempts == []


def test_the_fixed_clock_sets_the_time_the_core_and_plugins_see(harness: ActionHarness) -> None:
    with FixedClock().installed() as clock:
        assert utcnow() == clock.now
        action_id = harness.enqueue("TEST_NOOP", {}, not_before=clock.now + timedelta(hours=1))
        assert harness.run_due() == []
        clock.advance(hours=1)
        harness.run_due()
        assert harness.action(action_id).status == Status.SUCCESS
    assert utcnow() != clock.now


def test_the_kit_endpoint_records_what_it_receives() -> None:
    with FakeEndpoint("/hooks/x") as endpoint:
        urllib.request.urlopen(endpoint.url, data=b'{"a": 1}', timeout=10).read()
    (request,) = endpoint.received
    assert (request.path, request.json()) == ("/hooks/x", {"a": 1})


PROOF_LEAK = """
import urllib.request
from aol_core import hookimpl

URL = "http://127.0.0.1:9/"

@hookimpl
def aol_register_actions():
    return "LEAKY"

@hookimpl
def handle_action(payload, proof_mode, context):
    try:
        urllib.request.urlopen(URL, data=b"{}", timeout=1)  # proof mode or not: a defect
    except Exception:
        pass
    context.record_artifact("proof.txt", "would post")
"""


class LeakyContract(HandlerContract):
    action_type = "LEAKY"
    valid_payload: ClassVar[dict[str, Any]] = {}
    invalid_payload: ClassVar[dict[str, Any]] = {}


def test_the_contract_fails_a_handler_that_connects_in_proof_mode(
    tmp_site: Path, db_url: str
) -> None:
    install(tmp_site, "acme-leaky", "1.0", "acme_leaky", PROOF_LEAK)
    harness = ActionHarness(db_url, registry=load_plugins(Settings(plugins=("acme-leaky",))))
    try:
        with pytest.raises(AssertionError, match="proof mode connected to"):
            LeakyContract().test_proof_mode_opens_no_network_connection(harness)
        LeakyContract().test_proof_mode_records_an_artifact(harness)
    finally:
        harness.close()


def test_the_no_network_fixture_fails_a_test_that_connected(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("""
        import socket

        def test_swallows_the_error(aol_no_network):
            try:
                socket.create_connection(("127.0.0.1", 9), timeout=1)
            except Exception:
                pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*opened network connection(s) to*127.0.0.1*"])


def test_the_clock_fixture_fixes_utcnow(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        from aol_core import utcnow

        def test_fixed(aol_clock):
            assert utcnow() == aol_clock.now
            assert aol_clock.advance(minutes=5) == utcnow()
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.parametrize("chosen", ["", "mysql"])
def test_a_database_list_that_names_none_of_them_stops_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, chosen: str
) -> None:
    pytester.makepyfile("""
        def test_anything(aol_database_url):
            pass
    """)
    monkeypatch.setenv("AOL_TEST_DATABASES", chosen)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # refused while collecting
    result.stdout.fnmatch_lines([f"*AOL_TEST_DATABASES={chosen!r}: name sqlite, postgresql*"])
