"""The plugin API's edges: versions, the traps of pluggy's calling convention, unknown names in
the selection variables, conflicts failing checks, plugin commands and global flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aol_core import PLUGIN_API_VERSION
from aol_core.config import Settings
from aol_core.errors import PluginError
from aol_core.health import check_health
from aol_core.models import Status
from aol_core.plugins import load_plugins
from aol_core.testing import ActionHarness
from helpers import aol, handler_plugin, install, on_path, run_aol

TARGETING = """
from aol_core import hookimpl

@hookimpl
def aol_api_version():
    return {version!r}

@hookimpl
def aol_register_actions():
    return ["VERSIONED"]

@hookimpl
def handle_action(payload):
    return {{}}
"""


def only(*dists: str) -> Settings:
    return Settings(plugins=dists)


def test_a_plugin_built_for_another_major_api_version_is_refused_naming_both(
    tmp_site: Path,
) -> None:
    install(tmp_site, "acme-future", "2.0", "acme_future", TARGETING.format(version="2.0"))
    registry = load_plugins(only("acme-future"))
    (plugin,) = registry.broken
    assert "targets plugin API 2.0" in str(plugin.error)
    assert f"this aol-core provides {PLUGIN_API_VERSION}" in str(plugin.error)
    assert "VERSIONED" not in registry.routes
    with pytest.raises(PluginError, match=r"acme-future 2\.0"):
        registry.check(allow_broken=False)


def test_the_worker_refuses_another_major_unless_broken_plugins_are_allowed(
    tmp_site: Path, db_url: str
) -> None:
    install(tmp_site, "acme-future", "2.0", "acme_future", TARGETING.format(version="2.0"))
    env = on_path(tmp_site, AOL_PLUGINS="acme-future,aol-test-actions")
    upgraded = aol("db", "upgrade", db_url=db_url, env=env)  # the core's tables, and says so
    assert upgraded.returncode == 1
    assert "plugin acme-future 2.0" in upgraded.stderr and "not created" in upgraded.stderr
    refused = aol("worker", "--burst", db_url=db_url, env=env)
    assert refused.returncode == 1
    assert "acme-future 2.0" in refused.stderr and "targets plugin API 2.0" in refused.stderr
    allowed = aol("worker", "--burst", "--allow-broken-plugins", db_url=db_url, env=env)
    assert allowed.returncode == 0, allowed.stderr


def test_a_newer_minor_api_version_loads_with_a_warning(tmp_site: Path) -> None:
    newer = f"{PLUGIN_API_VERSION.split('.')[0]}.99"
    install(tmp_site, "acme-newer", "1.0", "acme_newer", TARGETING.format(version=newer))
    registry = load_plugins(only("acme-newer"))
    (plugin,) = registry.loaded
    assert plugin.api_version == newer
    assert "VERSIONED" in registry.routes
    assert any(f"targets plugin API {newer}, newer" in w for w in registry.warnings)


def test_an_unreadable_api_version_is_a_load_failure(tmp_site: Path) -> None:
    install(tmp_site, "acme-odd", "1.0", "acme_odd", TARGETING.format(version="one"))
    (plugin,) = load_plugins(only("acme-odd")).broken
    assert "aol_api_version returned 'one'" in str(plugin.error)


def test_a_plugin_without_the_version_hook_targets_the_first_api() -> None:
    (plugin,) = load_plugins(only("aol-test-actions")).loaded
    assert plugin.api_version == "1.0"


def test_a_handler_declaring_context_with_a_default_receives_it(
    tmp_site: Path, db_url: str
) -> None:
    install(tmp_site, "acme-ctx", "1.0", "acme_ctx", """
        from aol_core import hookimpl

        @hookimpl
        def aol_register_actions():
            return ["CTX"]

        @hookimpl
        def handle_action(action_type, payload, context=None):
            return {"action_id": None if context is None else context.action_id}
    """)
    harness = ActionHarness(db_url, registry=load_plugins(only("acme-ctx")))
    try:
        action = harness.run("CTX", {})
    finally:
        harness.close()
    assert (action.status, action.result) == (Status.SUCCESS, {"action_id": action.id})


def test_a_bare_string_declares_one_action_type(tmp_site: Path) -> None:
    install(tmp_site, "acme-solo", "1.0", "acme_solo", """
        from aol_core import hookimpl

        @hookimpl
        def aol_register_actions():
            return "SOLO"

        @hookimpl
        def handle_action(payload):
            return None
    """)
    registry = load_plugins(only("acme-solo"))
    assert list(registry.routes) == ["SOLO"]
    assert not registry.conflicts


def test_unknown_names_in_the_selection_variables_are_reported(tmp_site: Path,
                                                               db_url: str) -> None:
    registry = load_plugins(Settings(plugins=("aol-test-actions", "acme-typo"),
                                     disabled_plugins=("acme-gone",)))
    assert registry.unknown_names == [("AOL_PLUGINS", "acme-typo"),
                                      ("AOL_DISABLE_PLUGINS", "acme-gone")]
    listed = aol("plugins", db_url=db_url, env={"AOL_PLUGINS": "aol-test-actions,acme-typo"})
    assert listed.returncode == 0
    assert ("aol: warning: AOL_PLUGINS names acme-typo, which is not an installed plugin "
            "distribution") in listed.stderr


def test_conflicting_plugins_fail_aol_plugins_and_health_naming_both(
    tmp_site: Path, engine: object, db_url: str
) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "SHARED", version="1.2")
    handler_plugin(tmp_site, "acme-two", "acme_two", "SHARED", version="3.4")
    env = on_path(tmp_site, AOL_PLUGINS="acme-one,acme-two")
    listed = aol("plugins", "--json", db_url=db_url, env=env)
    assert listed.returncode == 1
    states = {p["distribution"]: p for p in json.loads(listed.stdout)}
    assert states["acme-one"]["conflicts_with"] == ["acme-two"]
    assert states["acme-two"]["state"] == "conflicting with acme-one"
    report = check_health(engine, load_plugins(only("acme-one", "acme-two")))  # type: ignore[arg-type]
    failed = {c.name: c.detail for c in report.checks if not c.ok}
    assert "acme-one 1.2" in failed["no conflicting plugins"]
    assert "acme-two 3.4" in failed["no conflicting plugins"]


def test_a_broken_plugin_fails_aol_plugins(tmp_site: Path, db_url: str) -> None:
    install(tmp_site, "acme-broken", "0.1", "acme_broken", "import missing_dependency\n")
    listed = aol("plugins", db_url=db_url,
                 env=on_path(tmp_site, AOL_PLUGINS="aol-test-actions,acme-broken"))
    assert listed.returncode == 1
    assert "broken: ModuleNotFoundError" in listed.stdout


def test_the_conflict_error_does_not_offer_allow_broken_plugins(tmp_site: Path) -> None:
    handler_plugin(tmp_site, "acme-one", "acme_one", "SHARED")
    handler_plugin(tmp_site, "acme-two", "acme_two", "SHARED")
    with pytest.raises(PluginError, match="does not admit conflicts"):
        load_plugins(only("acme-one", "acme-two")).check(allow_broken=True)


COMMANDS = """
from aol_core import AOLError, hookimpl

@hookimpl
def aol_register_commands(commands):
    hello = commands.add_parser("acme-hello", help="greet from the acme plugin")
    hello.add_argument("--name", required=True)
    hello.set_defaults(handler=run_hello)

def run_hello(ctx, args):
    if args.name == "nobody":
        raise AOLError("nobody to greet")
    print(f"hello {args.name} on {ctx.engine.dialect.name}")
    return 0
"""


@pytest.fixture
def command_env(tmp_site: Path) -> dict[str, str]:
    install(tmp_site, "acme-cmd", "1.0", "acme_cmd", COMMANDS)
    return on_path(tmp_site, AOL_PLUGINS="acme-cmd")


def test_a_plugin_command_runs_with_the_configured_database(
    command_env: dict[str, str], db_url: str
) -> None:
    result = aol("acme-hello", "--name", "ada", db_url=db_url, env=command_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("hello ada on ")


def test_a_plugin_command_gets_the_usual_error_handling(
    command_env: dict[str, str], db_url: str
) -> None:
    failed = aol("acme-hello", "--name", "nobody", db_url=db_url, env=command_env)
    assert (failed.returncode, failed.stderr.splitlines()[-1]) == (
        1, "aol: error: nobody to greet")
    usage = aol("acme-hello", db_url=db_url, env=command_env)
    assert usage.returncode == 2
    assert "--name" in usage.stderr


def test_help_lists_plugin_commands_with_their_plugin(command_env: dict[str, str],
                                                      db_url: str) -> None:
    result = aol("--help", db_url=db_url, env=command_env)
    assert result.returncode == 0
    (line,) = [line for line in result.stdout.splitlines() if "acme-hello" in line]
    assert "greet from the acme plugin [plugin acme-cmd]" in line


TAKER = """
from aol_core import hookimpl

@hookimpl
def aol_register_commands(commands):
    commands.add_parser("acme-early").set_defaults(handler=lambda ctx, args: 0)
    commands.add_parser("worker")
"""


def test_a_plugin_may_not_take_a_core_command_and_then_adds_none(
    tmp_site: Path, db_url: str
) -> None:
    install(tmp_site, "acme-taker", "1.0", "acme_taker", TAKER)
    env = on_path(tmp_site, AOL_PLUGINS="acme-taker")
    result = aol("plugins", "--json", db_url=db_url, env=env)
    assert "command 'worker' is already provided by aol-core" in result.stderr
    listed = {p["distribution"]: p for p in json.loads(result.stdout)}
    assert listed["acme-taker"]["commands"] == []
    assert aol("acme-early", db_url=db_url, env=env).returncode == 2  # not a command


@pytest.mark.parametrize("args", [
    ["--db", "{db}", "--log-level", "debug", "db", "upgrade"],
    ["db", "upgrade", "--db", "{db}", "--log-level", "DEBUG"],
    ["--log-level", "WARNING", "db", "--db", "{db}", "upgrade"],
])
def test_global_flags_work_before_or_after_the_command(args: list[str], db_url: str) -> None:
    result = run_aol(*[arg.format(db=db_url) for arg in args])
    assert result.returncode == 0, result.stderr
    assert "schema" in result.stdout


def test_a_global_flag_after_the_command_wins(db_url: str, tmp_path: Path) -> None:
    result = run_aol("--db", f"sqlite:///{tmp_path / 'not-this.db'}", "db", "upgrade",
                     "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "not-this.db").exists()
