"""``aol plugins``: what is installed, what it provides, and what is broken (exit 1 if any
plugin is broken or conflicting, so a deploy pipeline can gate on it)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from aol_core import schema
from aol_core.cli.common import Context, print_json, print_table
from aol_core.errors import AOLError
from aol_core.plugins import PLUGIN_API_VERSION, PluginInfo


def register(commands: Any) -> None:
    plugins = commands.add_parser(
        "plugins", help="installed action plugins (exit 1 if any is broken or conflicting)")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(handler=run_plugins)
    sub = plugins.add_subparsers(dest="plugins_command", metavar="SUBCOMMAND")
    check = sub.add_parser(
        "check", help="run the standard contract against installed plugins on a throwaway "
                      "database (exit 1 naming each failure; for deploy pipelines)")
    check.add_argument("distributions", nargs="*", metavar="DISTRIBUTION",
                       help="the plugins to check (default: every one selected)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=run_check)


def run_plugins(ctx: Context, args: argparse.Namespace) -> int:
    registry = ctx.registry
    for warning in registry.warnings:
        print(f"aol: warning: {warning}", file=sys.stderr)
    states = _migration_states(ctx)
    listed = [_describe(p, states, ctx) for p in registry.plugins]
    failing = bool(registry.broken or registry.conflicts)
    if args.json:
        print_json(listed)
        return 1 if failing else 0
    if not registry.plugins:
        print("no plugins installed in the aicmo.actions entry point group")
        return 0
    print(f"plugin API {PLUGIN_API_VERSION}")
    print_table(
        ["DISTRIBUTION", "VERSION", "API", "STATUS", "ACTION TYPES", "COMMANDS", "TABLES"],
        [[p["distribution"], p["version"], p["api_version"] or "-", p["state"],
          ", ".join(p["action_types"]), ", ".join(p["commands"]), _tables(p)]
         for p in listed],
    )
    for conflict in registry.conflicts:
        print(f"CONFLICT: {conflict}")
    return 1 if failing else 0


def run_check(ctx: Context, args: argparse.Namespace) -> int:
    from aol_core.plugin_check import check_plugins

    findings = check_plugins(ctx.registry, args.distributions)
    failed = [f for f in findings if not f.ok]
    if args.json:
        print_json([asdict(f) for f in findings])
        return 1 if failed else 0
    for finding in findings:
        mark = "skip" if finding.skipped else "ok  " if finding.ok else "FAIL"
        print(f"{mark}  {finding.plugin}  {finding.check}: {finding.detail}"
              + (f"\n      fix: {finding.fix}" if finding.fix else ""))
    plugins = len({f.plugin for f in findings})
    skipped = sum(f.skipped for f in findings)
    print((f"{len(failed)} of {len(findings)} check(s) failed" if failed
           else f"all {len(findings) - skipped} check(s) passed")
          + (f", {skipped} not checked" if skipped else "") + f" in {plugins} plugin(s)")
    return 1 if failed else 0


def _describe(plugin: PluginInfo, states: dict[str, schema.Component] | None,
              ctx: Context) -> dict[str, Any]:
    component = (states or {}).get(plugin.distribution)
    return {
        "distribution": plugin.distribution, "version": plugin.version,
        "entry_point": plugin.entry_point, "api_version": plugin.api_version,
        "status": plugin.status, "state": _state(plugin),
        "action_types": plugin.action_types, "commands": plugin.commands,
        "tables": sorted(ctx.registry.tables(plugin)),
        "migrations": None if component is None or not component.migrations else {
            "current": component.current, "head": component.head, "behind": component.behind},
        "missing_tables": list(component.missing) if component else [],
        "schema": ("unknown (database unavailable)" if states is None
                   else "behind: run aol db upgrade" if component and component.behind
                   else "current"),
        "error": plugin.error, "warning": plugin.warning,
        "conflicts_with": plugin.conflicts_with,
    }


def _state(plugin: PluginInfo) -> str:
    if plugin.status == "broken":
        return f"broken: {plugin.error}"
    if plugin.status == "disabled":
        return "disabled (AOL_DISABLE_PLUGINS)"
    if plugin.status == "not selected":
        return "not selected (AOL_PLUGINS names others)"
    if plugin.conflicts_with:
        return f"conflicting with {', '.join(plugin.conflicts_with)}"
    return "active" + (f" (warning: {plugin.warning})" if plugin.warning else "")


def _tables(plugin: dict[str, Any]) -> str:
    tables = ", ".join(plugin["tables"])
    return f"{tables} [{plugin['schema']}]" if tables else ""


def _migration_states(ctx: Context) -> dict[str, schema.Component] | None:
    """Each plugin's schema state in the configured database, or None when it cannot be
    read (no database yet: ``aol plugins`` works before ``aol db upgrade``)."""
    if not ctx.database_exists():
        return None
    try:
        return {c.name: c for c in schema.status(ctx.engine, ctx.registry)}
    except (SQLAlchemyError, AOLError):
        return None
