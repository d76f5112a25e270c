"""``aol plugins check``: the standard contract run against installed plugins before a deploy.

Each plugin is checked alone, on throwaway SQLite databases that its own migrations create:
it loads, its types route to it, its example payloads (``aol_example_actions``, and the
``valid_payload`` of each ``HandlerContract`` it returns from ``aol_handler_contracts``) are
accepted and succeed in proof mode without opening a network connection and with an
artifact, a second run of the same action changes nothing, a payload its schema forbids is
refused, and the failures its contracts declare are classified as declared (permanent: failed
once, not retried; retryable: retried). Every failure names the plugin and what to do about it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aol_core.config import Settings
from aol_core.errors import AOLError, InvalidPayload
from aol_core.models import Action, Status
from aol_core.plugins import PluginInfo, PluginRegistry, canonical, load_plugins
from aol_core.specs import ActionSpec
from aol_core.testing import ActionHarness, HandlerContract
from aol_core.testing.network import NetworkGuard


@dataclass(frozen=True)
class Finding:
    plugin: str
    check: str
    ok: bool
    detail: str
    fix: str = ""
    #: not checked (nothing declared to check it with); never a failure
    skipped: bool = False


def check_plugins(registry: PluginRegistry, distributions: list[str]) -> list[Finding]:
    """Check the named distributions (all installed ones when none are named)."""
    wanted = {canonical(name) for name in distributions}
    unknown = wanted - {canonical(p.distribution) for p in registry.plugins}
    if unknown:
        raise AOLError(f"not installed plugin distribution(s): {', '.join(sorted(unknown))}; "
                       "see aol plugins")
    findings: list[Finding] = []
    for plugin in registry.plugins:
        if wanted and canonical(plugin.distribution) not in wanted:
            continue
        if not wanted and plugin.status in ("disabled", "not selected"):
            continue
        findings += _check_one(registry, plugin)
    return findings


def _check_one(registry: PluginRegistry, plugin: PluginInfo) -> list[Finding]:
    name = f"{plugin.distribution} {plugin.version}"
    if plugin.status != "loaded":
        return [Finding(name, "loads", False, f"{plugin.status}: {plugin.error or ''}".strip(),
                        "fix the import or declaration named above; a broken plugin never "
                        "runs in a worker that is not allowed broken plugins")]
    findings = [Finding(name, "loads", True, f"targets plugin API {plugin.api_version}"
                        + (f" ({plugin.warning})" if plugin.warning else ""))]
    if plugin.conflicts_with:
        findings.append(Finding(
            name, "types routed", False,
            f"declares types also declared by {', '.join(plugin.conflicts_with)}",
            "uninstall one of them, or rename the type in one plugin"))
        return findings
    findings.append(Finding(name, "types routed", True, ", ".join(plugin.action_types)))
    try:
        contracts, refused = _contracts(registry, plugin)
    except Exception as exc:
        return [*findings, _hook_failed(name, "aol_handler_contracts", exc,
                                        "a list of HandlerContract subclasses")]
    findings += [Finding(name, "contracts", False, problem,
                         "return HandlerContract subclasses whose action_type the plugin "
                         "declares from aol_handler_contracts") for problem in refused]
    with _scratch_harness(plugin) as (harness, loaded):
        findings += _check_types(name, loaded, harness, contracts)
    for contract in contracts:
        with _scratch_harness(plugin) as (harness, _loaded):
            findings += _check_contract(name, contract(), harness)
    return findings


def _contracts(registry: PluginRegistry,
               plugin: PluginInfo) -> tuple[list[type[HandlerContract]], list[str]]:
    """The plugin's contract classes, and what is wrong with those that cannot be used."""
    usable, refused = [], []
    for declared in registry.call(plugin, "aol_handler_contracts"):
        for contract in declared:
            if not (isinstance(contract, type) and issubclass(contract, HandlerContract)):
                refused.append(f"aol_handler_contracts returned {contract!r}, not a "
                               "HandlerContract subclass")
            elif getattr(contract, "action_type", None) not in plugin.action_types:
                refused.append(f"{contract.__name__}.action_type "
                               f"{getattr(contract, 'action_type', None)!r} is not a type "
                               "this plugin declares")
            else:
                usable.append(contract)
    return usable, refused


@contextmanager
def _scratch_harness(plugin: PluginInfo) -> Iterator[tuple[ActionHarness, PluginInfo]]:
    """A harness on a new throwaway database that loads only ``plugin``."""
    with tempfile.TemporaryDirectory(prefix="aol-plugins-check-") as directory:
        url = f"sqlite:///{Path(directory) / 'check.db'}"
        settings = Settings(database_url=url, retry_base_seconds=0,
                            plugins=(plugin.distribution,))
        alone = load_plugins(settings)
        harness = ActionHarness(url, registry=alone, settings=settings)
        (loaded,) = [p for p in alone.loaded if p.entry_point == plugin.entry_point]
        try:
            yield harness, loaded
        finally:
            harness.close()


@dataclass(frozen=True)
class _Example:
    action_type: str
    payload: Mapping[str, Any]
    #: the contract class it comes from (None: aol_example_actions)
    contract: str | None = None
    records_an_artifact: bool = True

    def check(self, what: str) -> str:
        return f"{self.action_type}: {what}" + (f" [{self.contract}]" if self.contract else "")


def _check_types(name: str, plugin: PluginInfo, harness: ActionHarness,
                 contracts: list[type[HandlerContract]]) -> list[Finding]:
    findings = []
    try:
        examples = _examples(harness, plugin)
    except Exception as exc:
        return [_hook_failed(name, "aol_example_actions", exc,
                             "a list of (action_type, payload dict) pairs")]
    findings += [Finding(name, f"{example.action_type}: example", False,
                         "aol_example_actions returned an example of a type this plugin does "
                         f"not declare (it declares {', '.join(plugin.action_types)})",
                         "name one of the plugin's own action types in the example")
                 for example in examples if example.action_type not in plugin.action_types]
    for action_type in plugin.action_types:
        spec = harness.registry.routes[action_type].spec
        own = [e for e in examples if e.action_type == action_type]
        own_contracts = [c for c in contracts if c.action_type == action_type]
        if not own and not own_contracts:
            findings.append(Finding(
                name, f"{action_type}: example", False, "no example payload",
                "return one from aol_example_actions (or a HandlerContract from "
                "aol_handler_contracts), so the contract can run the type"))
        for example in own[:1]:
            findings += _run_example(name, harness, example)
        findings.append(_refuses_invalid(name, harness, spec))
        if not any(c.permanent_failure_payload or c.retryable_failure_payload
                   for c in own_contracts):
            findings.append(Finding(
                name, f"{action_type}: errors classified", True,
                "not checked: no contract declares a failing payload (set "
                "permanent_failure_payload or retryable_failure_payload on a HandlerContract "
                "returned from aol_handler_contracts)", skipped=True))
    return findings


def _examples(harness: ActionHarness, plugin: PluginInfo) -> list[_Example]:
    """The plugin's example actions; raises on anything but (type, payload mapping) pairs."""
    examples = []
    with harness.session() as session:
        for pairs in harness.registry.call(plugin, "aol_example_actions", session=session):
            for pair in pairs or ():
                if not (isinstance(pair, tuple | list) and len(pair) == 2
                        and isinstance(pair[0], str) and isinstance(pair[1], Mapping)):
                    raise TypeError(f"it returned {pair!r} among its examples")
                examples.append(_Example(pair[0], pair[1]))
    return examples


def _hook_failed(name: str, hook: str, exc: Exception, expected: str) -> Finding:
    """A hook of the plugin raised or returned junk: the check cannot go on for it."""
    return Finding(name, hook, False, f"{type(exc).__name__}: {exc}",
                   f"make {hook} return {expected}")


def _check_contract(name: str, contract: HandlerContract,
                    harness: ActionHarness) -> list[Finding]:
    example = _Example(contract.action_type, contract.valid_payload, type(contract).__name__,
                       contract.proof_records_an_artifact)
    try:
        contract.prepare(harness)
    except Exception as exc:
        return [Finding(name, example.check("prepare"), False,
                        f"prepare raised {type(exc).__name__}: {exc}",
                        "make prepare() create what valid_payload needs in an empty database")]
    findings = _run_example(name, harness, example)
    findings.append(_refused(name, harness, example.check("invalid payload"),
                             contract.action_type, contract.invalid_payload))
    declared = [(Status.FAILED, "permanent failure", contract.permanent_failure_payload),
                (Status.RETRY, "retryable failure", contract.retryable_failure_payload)]
    for expected, what, payload in declared:
        if payload is not None:
            findings.append(_classified(name, example.check(what), expected,
                                        contract.run_failing(harness, payload)))
    return findings


def _classified(name: str, check: str, expected: Status, action: Action) -> Finding:
    """Whether a declared failure ended as declared: FAILED after one attempt (permanent) or
    waiting to RETRY (retryable)."""
    if (action.status, action.attempts) == (expected, 1):
        return Finding(name, check, True, f"{action.status} after one attempt: "
                                          f"{action.last_error}")
    detail = f"ended {action.status} after {action.attempts} attempt(s)" + (
        f": {action.last_error}" if action.last_error else "")
    fix = ("raise aol_core.PermanentError for a failure a retry cannot fix"
           if expected == Status.FAILED else
           "raise aol_core.RetryableError (or let the error propagate) for a failure a later "
           "attempt can fix; PermanentError only when no retry can help")
    return Finding(name, check, False, detail, fix)


def _run_example(name: str, harness: ActionHarness, example: _Example) -> list[Finding]:
    check = example.check("example")
    guard = NetworkGuard()
    try:
        with guard.active():
            action = harness.run(example.action_type, dict(example.payload), proof_mode=True,
                                 only_this_type=True)
    except InvalidPayload as exc:
        return [Finding(name, check, False, f"refused at enqueue: {exc}",
                        "make the example payload match the type's payload schema")]
    if guard.attempts:
        return [Finding(name, check, False,
                        f"proof mode opened network connection(s) to {', '.join(guard.attempts)}",
                        "in proof mode, record what would be sent (context.record_artifact) "
                        "instead of sending it")]
    if action.status != Status.SUCCESS:
        return [Finding(name, check, False, f"{action.status} in proof mode: {action.last_error}",
                        "the example must succeed in proof mode on an empty database")]
    findings = [Finding(name, check, True, "succeeds in proof mode, no network connection")]
    if example.records_an_artifact:
        artifacts = harness.artifacts(action.id)
        findings.append(Finding(
            name, example.check("proof artifact"), bool(artifacts),
            ", ".join(a.name for a in artifacts) or "the proof run recorded no artifact",
            "" if artifacts else "call context.record_artifact(...) in proof mode to show "
                                 "what the action would have done"))
    before = harness.row_counts()
    again = harness.rerun(action.id, proof_mode=True)
    same = again.status == Status.SUCCESS and harness.row_counts() == before
    findings.append(Finding(
        name, example.check("second run"), same,
        "a second run of the same action changed nothing" if same
        else f"the second run ended {again.status} or wrote again",
        "" if same else "make the handler idempotent: check for its earlier effect (by "
                        "payload['idempotency_key'] or a unique key) before acting"))
    return findings


def _refuses_invalid(name: str, harness: ActionHarness, spec: ActionSpec) -> Finding:
    check = f"{spec.name}: invalid payload"
    invalid = _invalid_payload(spec.payload_schema)
    if invalid is None:
        return Finding(name, check, True, "no required fields or closed properties to violate")
    return _refused(name, harness, check, spec.name, invalid)


def _refused(name: str, harness: ActionHarness, check: str, action_type: str,
             invalid: Mapping[str, Any]) -> Finding:
    try:
        harness.enqueue(action_type, dict(invalid))
    except InvalidPayload:
        return Finding(name, check, True, f"{dict(invalid)} refused at enqueue")
    return Finding(name, check, False, f"{dict(invalid)} was accepted",
                   "declare what the payload must be in the ActionSpec's payload_schema")


def _invalid_payload(schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A payload the schema must refuse: missing its required fields, or an unknown field."""
    if not schema:
        return None
    if schema.get("required"):
        return {}
    if schema.get("additionalProperties") is False:
        return {"aol_check_unexpected_field": True}
    return None
