"""``aol plugins check``: the standard contract run against installed plugins before a deploy.

Each plugin is checked alone, on a throwaway SQLite database that its own migrations create:
it loads, its types route to it, its example payloads (``aol_example_actions``) are accepted
and succeed in proof mode without opening a network connection and with an artifact, a
second run of the same action changes nothing, and a payload its schema forbids is refused.
Every failure names the plugin and what to do about it.
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
from aol_core.models import Status
from aol_core.plugins import PluginInfo, PluginRegistry, canonical, load_plugins
from aol_core.specs import ActionSpec
from aol_core.testing import ActionHarness
from aol_core.testing.network import NetworkGuard


@dataclass(frozen=True)
class Finding:
    plugin: str
    check: str
    ok: bool
    detail: str
    fix: str = ""


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
    with _scratch_database() as url:
        settings = Settings(database_url=url, retry_base_seconds=0,
                            plugins=(plugin.distribution,))
        alone = load_plugins(settings)
        harness = ActionHarness(url, registry=alone, settings=settings)
        (loaded,) = [p for p in alone.loaded if p.entry_point == plugin.entry_point]
        try:
            findings += _check_actions(name, loaded, harness)
        finally:
            harness.close()
    return findings


@dataclass(frozen=True)
class _Example:
    action_type: str
    payload: Mapping[str, Any]


def _check_actions(name: str, plugin: PluginInfo, harness: ActionHarness) -> list[Finding]:
    findings = []
    with harness.session() as session:
        examples = [_Example(t, p) for pairs in harness.registry.call(
            plugin, "aol_example_actions", session=session) for t, p in pairs]
    for action_type in plugin.action_types:
        spec = harness.registry.routes[action_type].spec
        own = [e for e in examples if e.action_type == action_type]
        if not own:
            findings.append(Finding(
                name, f"{action_type}: example", False, "no example payload",
                "return one from aol_example_actions, so the contract can run the type"))
        for example in own[:1]:
            findings += _run_example(name, harness, example)
        findings.append(_refuses_invalid(name, harness, spec))
    return findings


def _run_example(name: str, harness: ActionHarness, example: _Example) -> list[Finding]:
    check = f"{example.action_type}: example"
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
    artifacts = harness.artifacts(action.id)
    findings.append(Finding(
        name, f"{example.action_type}: proof artifact", bool(artifacts),
        ", ".join(a.name for a in artifacts) or "the proof run recorded no artifact",
        "" if artifacts else "call context.record_artifact(...) in proof mode to show what "
                             "the action would have done"))
    before = harness.row_counts()
    again = harness.rerun(action.id, proof_mode=True)
    same = again.status == Status.SUCCESS and harness.row_counts() == before
    findings.append(Finding(
        name, f"{example.action_type}: second run", same,
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
    try:
        harness.enqueue(spec.name, invalid)
    except InvalidPayload:
        return Finding(name, check, True, f"{invalid} refused at enqueue")
    return Finding(name, check, False, f"{invalid} was accepted",
                   "declare the payload's required fields in the ActionSpec's payload_schema")


def _invalid_payload(schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A payload the schema must refuse: missing its required fields, or an unknown field."""
    if not schema:
        return None
    if schema.get("required"):
        return {}
    if schema.get("additionalProperties") is False:
        return {"aol_check_unexpected_field": True}
    return None


@contextmanager
def _scratch_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="aol-plugins-check-") as directory:
        yield f"sqlite:///{Path(directory) / 'check.db'}"
