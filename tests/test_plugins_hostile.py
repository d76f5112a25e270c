"""What a third-party team's sloppy or hostile plugin meets: ``aol plugins check`` names each
broken hook as a failure of that plugin, junk declarations make the plugin broken (named) rather
than crashing ``aol``, ``aol new-plugin`` refuses what would stop workers, a plugin command
without a handler is one line, and a failing plugin migration changes nothing."""

from __future__ import annotations

import contextlib
import importlib
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from test_plugin_migrations import FIRST, PLUGIN, SECOND, ledger_plugin, release

from aol_core.testing import FakeEndpoint, assert_migrations_match_models
from helpers import aol, install, on_path, run_aol

SEND = """
from aol_core import ActionSpec, hookimpl
from aol_core.testing import HandlerContract

@hookimpl
def aol_register_actions():
    return [ActionSpec("HOSTILE_SEND", "send", payload_schema={"type": "object"})]

@hookimpl
def handle_action(payload, proof_mode, context):
    context.record_artifact("message.txt", "to someone")
"""

#: the good plugin of tests/test_plugins_check.py, in miniature
GOOD = SEND.replace("HOSTILE_SEND", "FINE_SEND") + """
@hookimpl
def aol_example_actions():
    return [("FINE_SEND", {})]
"""


def hostile(site: Path, hooks: str) -> None:
    install(site, "acme-hostile", "1.0", "acme_hostile", SEND + hooks)


def check(site: Path, plugins: str = "acme-hostile") -> tuple[int, list[dict[str, object]]]:
    result = run_aol("plugins", "check", "--json", env=on_path(site, AOL_PLUGINS=plugins),
                     timeout=120)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


def failed(findings: list[dict[str, object]]) -> dict[object, tuple[object, object, object]]:
    return {f["check"]: (f["plugin"], f["detail"], f["fix"]) for f in findings if not f["ok"]}


def test_examples_hook_that_raises_is_a_failure_of_that_plugin(tmp_site: Path) -> None:
    hostile(tmp_site, """
@hookimpl
def aol_example_actions():
    raise RuntimeError("examples exploded")
""")
    code, findings = check(tmp_site)
    assert code == 1
    assert failed(findings) == {"aol_example_actions": (
        "acme-hostile 1.0", "RuntimeError: examples exploded",
        "make aol_example_actions return a list of (action_type, payload dict) pairs")}


def test_examples_hook_returning_junk_is_a_failure_of_that_plugin(tmp_site: Path) -> None:
    hostile(tmp_site, """
@hookimpl
def aol_example_actions():
    return "HOSTILE_SEND"
""")
    code, findings = check(tmp_site)
    assert code == 1
    (detail,) = [f["detail"] for f in findings if f["check"] == "aol_example_actions"]
    assert detail == "TypeError: it returned 'H' among its examples"


def test_contracts_hook_that_raises_is_a_failure_of_that_plugin(tmp_site: Path) -> None:
    hostile(tmp_site, """
@hookimpl
def aol_example_actions():
    return [("HOSTILE_SEND", {})]

@hookimpl
def aol_handler_contracts():
    raise RuntimeError("contracts exploded")
""")
    code, findings = check(tmp_site)
    assert code == 1
    assert failed(findings) == {"aol_handler_contracts": (
        "acme-hostile 1.0", "RuntimeError: contracts exploded",
        "make aol_handler_contracts return a list of HandlerContract subclasses")}


def test_an_example_of_a_type_the_plugin_does_not_declare_is_named(tmp_site: Path) -> None:
    hostile(tmp_site, """
@hookimpl
def aol_example_actions():
    return [("HOSTILE_SNED", {})]
""")
    code, findings = check(tmp_site)
    assert code == 1
    assert failed(findings)["HOSTILE_SNED: example"][1] == (
        "aol_example_actions returned an example of a type this plugin does not declare "
        "(it declares HOSTILE_SEND)")


def test_a_hostile_plugin_does_not_stop_the_check_of_the_others(tmp_site: Path) -> None:
    hostile(tmp_site, """
@hookimpl
def aol_example_actions():
    raise RuntimeError("examples exploded")
""")
    install(tmp_site, "acme-fine", "1.0", "acme_fine", GOOD)
    code, findings = check(tmp_site, "acme-hostile,acme-fine")
    assert code == 1
    assert {f["plugin"] for f in findings if not f["ok"]} == {"acme-hostile 1.0"}
    assert any(f["check"] == "FINE_SEND: second run" and f["ok"] for f in findings)


def test_schema_hook_returning_junk_makes_the_plugin_broken_naming_it(
    tmp_site: Path, db_url: str
) -> None:
    hostile(tmp_site, """
@hookimpl
def aol_schema():
    return "not metadata"
""")
    env = on_path(tmp_site, AOL_PLUGINS="acme-hostile")
    listed = aol("plugins", "--json", db_url=db_url, env=env)
    assert listed.returncode == 1, listed.stderr
    (plugin,) = [p for p in json.loads(listed.stdout) if p["distribution"] == "acme-hostile"]
    assert plugin["error"] == ("PluginError: aol_schema returned 'not metadata'; expected "
                               "SQLAlchemy MetaData")
    assert "internal error" not in aol("db", "status", db_url=db_url, env=env).stderr


def test_new_plugin_refuses_an_action_type_an_installed_plugin_declares(tmp_path: Path) -> None:
    result = run_aol("new-plugin", "acme-poster", "--action-type", "TEST_NOOP",
                     "--directory", str(tmp_path / "out"))
    assert (result.returncode, result.stderr) == (
        1, "aol: error: action type TEST_NOOP is taken: the installed plugin aol-test-actions "
           "declares it (two plugins declaring one type stop every worker); choose another "
           "with --action-type\n")
    assert not (tmp_path / "out").exists()


def test_new_plugin_into_a_directory_it_cannot_make_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("mine")
    result = run_aol("new-plugin", "acme-new", "--directory", str(tmp_path / "a-file" / "sub"))
    assert (result.returncode, result.stderr) == (
        1, f"aol: error: cannot write the plugin to {tmp_path / 'a-file' / 'sub'}: "
           "Not a directory\n")


def test_a_plugin_command_without_a_handler_is_one_line_naming_it(tmp_site: Path,
                                                                  db_url: str) -> None:
    install(tmp_site, "acme-cmd", "1.0", "acme_cmd", """
from aol_core import hookimpl

@hookimpl
def aol_register_commands(commands):
    commands.add_parser("acme-forgot", help="no handler set")
""")
    result = aol("acme-forgot", db_url=db_url, env=on_path(tmp_site, AOL_PLUGINS="acme-cmd"))
    assert (result.returncode, result.stderr) == (
        1, "aol: error: command acme-forgot of plugin acme-cmd 1.0 (acme_cmd = acme_cmd) has "
           "no handler: the plugin must call set_defaults(handler=...) on its parser\n")


def test_new_plugin_refuses_the_name_aol(tmp_path: Path) -> None:
    result = run_aol("new-plugin", "aol", "--directory", str(tmp_path / "out"))
    assert (result.returncode, result.stderr) == (
        1, "aol: error: invalid plugin name 'aol': its migrations would share the core's "
           "version table; choose e.g. acme-aol\n")


def test_a_plugin_named_aol_cannot_migrate_into_the_cores_version_table(
    tmp_site: Path, db_url: str
) -> None:
    install(tmp_site, "aol", "1.0", "acme_ledger", PLUGIN)
    release(tmp_site, FIRST)
    env = on_path(tmp_site, AOL_PLUGINS="aol")
    message = ("aol: error: plugin aol 1.0 (acme_ledger = acme_ledger): a distribution named "
               "aol cannot ship migrations (its version table would be the core's "
               "aol_alembic_version); rename the distribution\n")
    for command in (["db", "upgrade"], ["db", "status"]):
        result = aol(*command, db_url=db_url, env=env)
        assert (result.returncode, result.stderr) == (1, message)


BROKEN_SECOND = SECOND.replace("SET currency = 'EUR'", "SET no_such_column = 1")


def test_a_failing_plugin_migration_changes_nothing(tmp_site: Path, db_url: str) -> None:
    ledger_plugin(tmp_site, FIRST)
    env = on_path(tmp_site, AOL_PLUGINS="acme-ledger")
    assert aol("db", "upgrade", db_url=db_url, env=env).returncode == 0
    release(tmp_site, FIRST, BROKEN_SECOND)
    failing = aol("db", "upgrade", db_url=db_url, env=env)
    assert failing.returncode == 1
    assert len(failing.stderr.splitlines()) == 1, failing.stderr
    status = aol("db", "status", "--json", db_url=db_url, env=env)
    (ledger,) = [c for c in json.loads(status.stdout) if c["component"] == "acme-ledger"]
    assert (ledger["current"], ledger["behind"]) == ("0001", True)
    release(tmp_site, FIRST, SECOND)
    assert aol("db", "upgrade", db_url=db_url, env=env).returncode == 0


def test_a_datagram_sent_in_proof_mode_fails_the_check(tmp_site: Path) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    install(tmp_site, "acme-udp", "1.0", "acme_udp", f"""
import socket
import urllib.error
import urllib.request
from aol_core import ActionSpec, hookimpl

@hookimpl
def aol_register_actions():
    return [ActionSpec("UDP_SEND", "send", payload_schema={{"type": "object"}})]

@hookimpl
def aol_example_actions():
    return [("UDP_SEND", {{}})]

@hookimpl
def handle_action(payload, proof_mode, context):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"sent for real", ("127.0.0.1", {port}))
    context.record_artifact("message.txt", "to someone")
""")
    code, findings = check(tmp_site, "acme-udp")
    receiver.setblocking(False)
    with receiver, contextlib.suppress(BlockingIOError):
        assert receiver.recv(100) == b"", "the datagram left the process"
    assert code == 1
    assert failed(findings)["UDP_SEND: example"][1] == (
        f"proof mode opened network connection(s) to ('127.0.0.1', {port})")


def test_the_fake_endpoint_answers_another_path_404_and_keeps_no_delivery() -> None:
    with FakeEndpoint("/hooks/mail") as endpoint:
        wrong = endpoint.url.replace("/hooks/mail", "/hooks/mial")
        request = urllib.request.Request(wrong, data=b"{}", method="POST",
                                         headers={"Idempotency-Key": "k1"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert (refused.value.code, endpoint.posts) == (404, {})


def test_the_kits_migration_check_names_a_table_no_model_declares(
    tmp_site: Path, db_url: str
) -> None:
    ledger_plugin(tmp_site, FIRST.replace('    op.create_table("acme_ledger_entries"', '''\
    op.create_table("acme_ledger_forgotten", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table("acme_ledger_entries"'''))
    models = importlib.import_module("acme_ledger").metadata
    with pytest.raises(AssertionError, match=r"'remove_table'.*acme_ledger_forgotten"):
        assert_migrations_match_models(db_url, "acme-ledger", models)
