"""Plugin discovery through the ``aicmo.actions`` entry point group, and the routing table.

Throwaway distributions are installed into a directory on ``sys.path`` (a ``.dist-info``
with METADATA and entry_points.txt, as pip writes them), so discovery is the real thing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aol_core.config import Settings
from aol_core.errors import PluginError
from aol_core.models import Status
from aol_core.plugins import load_plugins
from aol_core.testing import ActionHarness
from helpers import aol, handler_plugin, install


def only(*dists: str) -> Settings:
    return Settings(plugins=dists)


def test_an_installed_distribution_is_found_with_its_version_and_types() -> None:
    registry = load_plugins(only("aol-test-actions"))
    (plugin,) = [p for p in registry.plugins if p.status == "loaded"]
    assert (plugin.distribution, plugin.version, plugin.entry_point) == (
        "aol-test-actions", "1.0.0", "test_actions = aol_test_actions")
    assert "TEST_NOOP" in plugin.action_types
    assert registry.routes["TEST_NOOP"].plugin is plugin


def test_two_distributions_declaring_one_type_are_named_together(tmp_site: Path) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "SHARED", version="1.2")
    handler_plugin(tmp_site, "acme-two", "acme_two", "SHARED", "ONLY_TWO", version="3.4")
    registry = load_plugins(only("acme-one", "acme-two"))
    with pytest.raises(PluginError) as error:
        registry.check(allow_broken=True)
    message = str(error.value)
    assert "SHARED" in message
    assert "acme-one 1.2" in message and "acme-two 3.4" in message
    assert "SHARED" not in registry.routes and "ONLY_TWO" in registry.routes


def test_a_plugin_that_fails_to_import_is_named(tmp_site: Path) -> None:
    install(tmp_site, "acme-broken", "0.1", "acme_broken", "import no_such_module_here\n")
    handler_plugin(tmp_site, "acme-good", "acme_good", "GOOD")
    registry = load_plugins(only("acme-broken", "acme-good"))
    (broken,) = registry.broken
    assert broken.distribution == "acme-broken"
    assert "No module named 'no_such_module_here'" in (broken.error or "")
    with pytest.raises(PluginError, match=r"acme-broken 0\.1.*--allow-broken-plugins"):
        registry.check(allow_broken=False)


def test_broken_plugins_may_be_allowed_and_the_rest_still_route(tmp_site: Path) -> None:
    install(tmp_site, "acme-broken", "0.1", "acme_broken", "raise RuntimeError('bad')\n")
    handler_plugin(tmp_site, "acme-good", "acme_good", "GOOD")
    registry = load_plugins(only("acme-broken", "acme-good"))
    registry.check(allow_broken=True)
    assert list(registry.routes) == ["GOOD"]


def test_aol_plugins_loads_only_the_named_distributions(tmp_site: Path) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "ONE")
    handler_plugin(tmp_site, "acme-two", "acme_two", "TWO")
    registry = load_plugins(Settings.from_env({"AOL_PLUGINS": "acme_one"}))
    assert list(registry.routes) == ["ONE"]
    statuses = {p.distribution: p.status for p in registry.plugins}
    assert statuses["acme-two"] == "not selected"


def test_aol_plugins_set_but_empty_loads_none(tmp_site: Path) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "ONE")
    assert load_plugins(Settings.from_env({"AOL_PLUGINS": ""})).routes == {}


def test_aol_plugins_unset_loads_every_installed_plugin(tmp_site: Path) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "ONE")
    routes = load_plugins(Settings.from_env({})).routes
    assert {"ONE", "TEST_NOOP"} <= routes.keys()


def test_aol_disable_plugins_never_loads_the_named_ones(tmp_site: Path) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "ONE")
    handler_plugin(tmp_site, "acme-two", "acme_two", "TWO")
    registry = load_plugins(Settings.from_env(
        {"AOL_PLUGINS": "acme-one,acme-two", "AOL_DISABLE_PLUGINS": "Acme.Two"}))
    assert list(registry.routes) == ["ONE"]
    assert {p.distribution: p.status for p in registry.plugins}["acme-two"] == "disabled"


def test_only_the_declaring_plugin_handles_an_action(tmp_site: Path, db_url: str) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "ONE")
    handler_plugin(tmp_site, "acme-two", "acme_two", "TWO")
    registry = load_plugins(only("acme-one", "acme-two"))
    harness = ActionHarness(db_url, registry=registry)
    try:
        action = harness.run("TWO", {}, force=True)
    finally:
        harness.close()
    import acme_one
    import acme_two

    assert action.result == {"handled_by": "acme_two"}
    assert (acme_one.CALLS, acme_two.CALLS) == ([], [("acme_two", "TWO")])


def test_a_hook_with_an_unknown_name_marks_the_plugin_broken(tmp_site: Path) -> None:
    install(tmp_site, "acme-typo", "1.0", "acme_typo", """
        from aol_core import hookimpl
        @hookimpl
        def aol_register_actions():
            return ["T"]
        @hookimpl
        def handle_actoin(action_type):
            pass
    """)
    (broken,) = load_plugins(only("acme-typo")).broken
    assert "unknown hook(s) handle_actoin" in (broken.error or "")


def test_declared_types_without_a_handler_mark_the_plugin_broken(tmp_site: Path) -> None:
    install(tmp_site, "acme-half", "1.0", "acme_half", """
        from aol_core import hookimpl
        @hookimpl
        def aol_register_actions():
            return ["T"]
    """)
    (broken,) = load_plugins(only("acme-half")).broken
    assert "implements no handle_action" in (broken.error or "")


def test_a_handler_without_declared_types_marks_the_plugin_broken(tmp_site: Path) -> None:
    install(tmp_site, "acme-legacy", "1.0", "acme_legacy", """
        from aol_core import hookimpl
        @hookimpl
        def handle_action(action_type, session, payload, proof_mode):
            return None
    """)
    (broken,) = load_plugins(only("acme-legacy")).broken
    assert "declares no action types" in (broken.error or "")


def test_an_invalid_payload_schema_marks_the_plugin_broken(tmp_site: Path) -> None:
    install(tmp_site, "acme-schema", "1.0", "acme_schema", """
        from aol_core import hookimpl, ActionSpec
        @hookimpl
        def aol_register_actions():
            return [ActionSpec("T", payload_schema={"type": "no-such-type"})]
        @hookimpl
        def handle_action(action_type):
            pass
    """)
    (broken,) = load_plugins(only("acme-schema")).broken
    assert "payload schema of T is invalid" in (broken.error or "")


def test_the_four_argument_seed_signature_still_works(tmp_site: Path, db_url: str) -> None:
    install(tmp_site, "acme-seed", "1.0", "acme_seed", """
        from aol_core import hookimpl
        @hookimpl
        def aol_register_actions():
            return ["SEED"]
        @hookimpl
        def handle_action(action_type, session, payload, proof_mode):
            return {"key": payload["idempotency_key"], "proof": proof_mode}
    """)
    harness = ActionHarness(db_url, registry=load_plugins(only("acme-seed")))
    try:
        action = harness.run("SEED", {}, idempotency_key="k", proof_mode=True, force=True)
    finally:
        harness.close()
    assert (action.status, action.result) == (Status.SUCCESS, {"key": "k", "proof": True})


def test_the_worker_refuses_to_start_naming_both_conflicting_distributions(
    tmp_site: Path, db_url: str
) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "SHARED", version="1.2")
    handler_plugin(tmp_site, "acme-two", "acme_two", "SHARED", version="3.4")
    env = {"PYTHONPATH": f"{tmp_site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "AOL_PLUGINS": "acme-one,acme-two"}
    assert aol("db", "upgrade", db_url=db_url, env=env).returncode == 0
    result = aol("worker", "--burst", db_url=db_url, env=env)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("aol: error: action type SHARED is declared by acme-one 1.2")
    assert "acme-two 3.4" in line


def test_aol_plugins_lists_distributions_versions_status_and_types(tmp_site: Path,
                                                                   db_url: str) -> None:
    install(tmp_site, "acme-broken", "0.1", "acme_broken", "import missing_dependency\n")
    env = {"PYTHONPATH": f"{tmp_site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "AOL_PLUGINS": "aol-test-actions,acme-broken"}
    result = aol("plugins", "--json", db_url=db_url, env=env)
    import json

    listed = {p["distribution"]: p for p in json.loads(result.stdout)}
    assert listed["aol-test-actions"]["status"] == "loaded"
    assert "TEST_NOOP" in listed["aol-test-actions"]["action_types"]
    assert listed["acme-broken"]["status"] == "broken"
    assert "missing_dependency" in listed["acme-broken"]["error"]


def test_a_worker_allowed_broken_plugins_runs_the_rest_and_health_says_degraded(
    tmp_site: Path, engine: object, db_url: str
) -> None:
    import threading

    from aol_core.health import check_health
    from aol_core.worker import Worker, WorkerOptions

    install(tmp_site, "acme-broken", "0.1", "acme_broken", "import missing_dependency\n")
    registry = load_plugins(only("aol-test-actions", "acme-broken"))
    with pytest.raises(PluginError):
        Worker(engine, registry, Settings(), WorkerOptions()).run()  # type: ignore[arg-type]
    worker = Worker(engine, registry, Settings(poll_interval=0.05),  # type: ignore[arg-type]
                    WorkerOptions(name="degraded", allow_broken_plugins=True))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert worker.started.wait(10)
        report = check_health(engine, registry)  # type: ignore[arg-type]
    finally:
        worker.request_stop("test over")
        thread.join(timeout=30)
    failed = {c.name: c.detail for c in report.checks if not c.ok}
    assert list(failed) == ["no broken plugins"]
    assert "acme-broken 0.1" in failed["no broken plugins"]
    assert "worker degraded runs degraded" in failed["no broken plugins"]
    assert "TEST_NOOP" in report.workers[0]["action_types"]
