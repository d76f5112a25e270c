"""``aol plugins check`` runs the standard contract against installed plugins for a deploy
pipeline; ``aol actions types`` and ``aol actions schema`` say what may be enqueued."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import install, on_path, run_aol

GOOD = """
from aol_core import ActionSpec, hookimpl
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

metadata = MetaData()
sent = Table("acme_good_sent", metadata, Column("id", Integer, primary_key=True),
             Column("key", String(255), unique=True, nullable=False))

@hookimpl
def aol_register_actions():
    return [ActionSpec("GOOD_SEND", "send once", payload_schema={
        "type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]})]

@hookimpl
def aol_schema():
    return metadata

@hookimpl
def aol_example_actions():
    return [("GOOD_SEND", {"to": "a@example.com"})]

@hookimpl
def handle_action(session, payload, proof_mode, context):
    key = payload["idempotency_key"]
    if session.scalar(select(sent.c.id).where(sent.c.key == key)) is None:
        session.execute(insert(sent).values(key=key))
    context.record_artifact("message.txt", f"to {payload['to']}")
    return {"sent": not proof_mode}
"""

#: writes a row on every run, connects in proof mode, records nothing
BAD = """
import socket
from aol_core import ActionSpec, hookimpl
from sqlalchemy import Column, Integer, MetaData, Table, insert

metadata = MetaData()
sent = Table("acme_bad_sent", metadata, Column("id", Integer, primary_key=True))

@hookimpl
def aol_register_actions():
    return ["BAD_SEND"]

@hookimpl
def aol_schema():
    return metadata

@hookimpl
def aol_example_actions():
    return [("BAD_SEND", {})]

@hookimpl
def handle_action(session, payload, proof_mode):
    session.execute(insert(sent))
    if payload.get("call"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
"""

LEAKY = BAD.replace('[("BAD_SEND", {})]', '[("BAD_SEND", {"call": True})]')

#: examples only from its contract class, which declares how each failure is classified
CONTRACTED = """
from aol_core import ActionSpec, PermanentError, RetryableError, hookimpl
from aol_core.testing import HandlerContract

class SendContract(HandlerContract):
    action_type = "ACME_SEND"
    valid_payload = {"to": "a@example.com"}
    invalid_payload = {"to": 5}
    permanent_failure_payload = {"to": "nobody"}
    retryable_failure_payload = {"to": "busy"}

@hookimpl
def aol_register_actions():
    return [ActionSpec("ACME_SEND", "send", payload_schema={
        "type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]})]

@hookimpl
def aol_handler_contracts():
    return [SendContract]

@hookimpl
def handle_action(payload, proof_mode, context):
    if payload["to"] == "nobody":
        raise PermanentError("no such mailbox")
    if payload["to"] == "busy":
        raise RetryableError("mailbox busy")
    context.record_artifact("message.txt", payload["to"])
"""

#: gives up on what a retry would fix, and retries what no retry can fix
MISCLASSIFIED = (CONTRACTED.replace("raise PermanentError", "raise SWAP")
                 .replace("raise RetryableError", "raise PermanentError")
                 .replace("raise SWAP", "raise RetryableError"))


def check(site: Path, *args: str, plugins: str) -> tuple[int, list[dict[str, object]]]:
    result = run_aol("plugins", "check", *args, "--json",
                     env=on_path(site, AOL_PLUGINS=plugins), timeout=120)
    assert result.stderr == "", result.stderr
    return result.returncode, json.loads(result.stdout)


def failures(findings: list[dict[str, object]]) -> dict[object, object]:
    return {f["check"]: (f["detail"], f["fix"]) for f in findings if not f["ok"]}


def test_a_plugin_meeting_the_contract_passes(tmp_site: Path) -> None:
    install(tmp_site, "acme-good", "1.0", "acme_good", GOOD)
    code, findings = check(tmp_site, plugins="acme-good")
    assert (code, failures(findings)) == (0, {})
    assert {f["check"] for f in findings} == {
        "loads", "types routed", "GOOD_SEND: example", "GOOD_SEND: proof artifact",
        "GOOD_SEND: second run", "GOOD_SEND: invalid payload", "GOOD_SEND: errors classified"}


def test_without_a_contract_error_classification_is_reported_as_not_checked(
    tmp_site: Path
) -> None:
    install(tmp_site, "acme-good", "1.0", "acme_good", GOOD)
    _code, findings = check(tmp_site, plugins="acme-good")
    (unchecked,) = [f for f in findings if f["skipped"]]
    assert unchecked["check"] == "GOOD_SEND: errors classified"
    assert "aol_handler_contracts" in str(unchecked["detail"])


def test_a_contract_class_supplies_the_payloads_and_its_failures_are_classified(
    tmp_site: Path
) -> None:
    install(tmp_site, "acme-contracted", "1.0", "acme_contracted", CONTRACTED)
    code, findings = check(tmp_site, plugins="acme-contracted")
    assert (code, failures(findings)) == (0, {})
    assert {f["check"]: f["detail"] for f in findings if "failure" in str(f["check"])} == {
        "ACME_SEND: permanent failure [SendContract]":
            "FAILED after one attempt: PermanentError: no such mailbox",
        "ACME_SEND: retryable failure [SendContract]":
            "RETRY after one attempt: RetryableError: mailbox busy"}
    assert "ACME_SEND: invalid payload [SendContract]" in {f["check"] for f in findings}


def test_a_failure_classified_against_the_contract_fails_the_check(tmp_site: Path) -> None:
    install(tmp_site, "acme-contracted", "1.0", "acme_contracted", MISCLASSIFIED)
    code, findings = check(tmp_site, plugins="acme-contracted")
    assert code == 1
    failed = failures(findings)
    assert set(failed) == {"ACME_SEND: permanent failure [SendContract]",
                           "ACME_SEND: retryable failure [SendContract]"}
    detail, fix = failed["ACME_SEND: permanent failure [SendContract]"]
    assert str(detail).startswith("ended RETRY after 1 attempt(s)")
    assert "raise aol_core.PermanentError" in str(fix)
    detail, fix = failed["ACME_SEND: retryable failure [SendContract]"]
    assert str(detail).startswith("ended FAILED after 1 attempt(s)")
    assert "raise aol_core.RetryableError" in str(fix)


def test_a_contract_for_a_type_the_plugin_does_not_declare_fails_the_check(
    tmp_site: Path
) -> None:
    install(tmp_site, "acme-contracted", "1.0", "acme_contracted",
            CONTRACTED.replace('action_type = "ACME_SEND"', 'action_type = "ACME_OTHER"'))
    code, findings = check(tmp_site, plugins="acme-contracted")
    assert code == 1
    detail, fix = failures(findings)["contracts"]
    assert "SendContract.action_type 'ACME_OTHER' is not a type this plugin declares" in str(
        detail)
    assert "aol_handler_contracts" in str(fix)


def test_the_text_report_marks_what_was_not_checked(tmp_site: Path) -> None:
    install(tmp_site, "acme-good", "1.0", "acme_good", GOOD)
    result = run_aol("plugins", "check", env=on_path(tmp_site, AOL_PLUGINS="acme-good"),
                     timeout=120)
    assert result.returncode == 0, result.stdout
    assert "skip  acme-good 1.0  GOOD_SEND: errors classified: not checked" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "all 6 check(s) passed, 1 not checked in 1 plugin(s)")


def test_each_failure_is_named_with_its_plugin_and_fix(tmp_site: Path) -> None:
    install(tmp_site, "acme-bad", "1.0", "acme_bad", BAD)
    code, findings = check(tmp_site, plugins="acme-bad")
    assert code == 1
    failed = failures(findings)
    assert set(failed) == {"BAD_SEND: proof artifact", "BAD_SEND: second run"}
    assert "context.record_artifact" in str(failed["BAD_SEND: proof artifact"][1])
    assert "idempotent" in str(failed["BAD_SEND: second run"][1])
    assert {f["plugin"] for f in findings} == {"acme-bad 1.0"}


def test_a_proof_run_that_connects_fails_the_check(tmp_site: Path) -> None:
    install(tmp_site, "acme-leaky", "1.0", "acme_leaky", LEAKY)
    code, findings = check(tmp_site, plugins="acme-leaky")
    assert code == 1
    detail, fix = failures(findings)["BAD_SEND: example"]
    assert "record what would be sent" in str(fix)
    assert "proof mode opened network connection(s) to ('127.0.0.1', 9)" in str(detail)


def test_only_the_named_distributions_are_checked(tmp_site: Path) -> None:
    install(tmp_site, "acme-good", "1.0", "acme_good", GOOD)
    install(tmp_site, "acme-bad", "1.0", "acme_bad", BAD)
    code, findings = check(tmp_site, "acme_good", plugins="acme-good,acme-bad")
    assert code == 0
    assert {f["plugin"] for f in findings} == {"acme-good 1.0"}


def test_a_broken_plugin_fails_the_check(tmp_site: Path) -> None:
    install(tmp_site, "acme-broken", "0.1", "acme_broken", "import missing_dependency\n")
    code, findings = check(tmp_site, plugins="acme-broken")
    assert code == 1
    assert "missing_dependency" in str(failures(findings)["loads"][0])


def test_an_unknown_distribution_is_one_line(tmp_site: Path) -> None:
    result = run_aol("plugins", "check", "acme-nothing", env=on_path(tmp_site))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "aol: error: not installed plugin distribution(s): acme-nothing; see aol plugins")


def test_actions_types_lists_each_type_with_its_plugin_and_settings() -> None:
    result = run_aol("actions", "types", "--json")
    assert result.returncode == 0, result.stderr
    strict = {t["action_type"]: t for t in json.loads(result.stdout)}["TEST_STRICT"]
    assert (strict["plugin"], strict["max_attempts"], strict["has_payload_schema"]) == (
        "aol-test-actions", 4, True)


def test_actions_schema_prints_the_payload_schema_as_json() -> None:
    result = run_aol("actions", "schema", "TEST_STRICT")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["required"] == ["n"]


def test_actions_schema_of_an_unknown_type_suggests_the_closest() -> None:
    result = run_aol("actions", "schema", "test_strict")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "aol: error: no installed plugin declares test_strict; did you mean TEST_STRICT?")
