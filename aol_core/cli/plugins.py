"""``aol plugins``: what is installed, what it provides, and what is broken."""

from __future__ import annotations

import argparse
from typing import Any

from aol_core.cli.common import Context, print_json, print_table


def register(commands: Any) -> None:
    plugins = commands.add_parser("plugins", help="installed action plugins")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(handler=run_plugins)


def run_plugins(ctx: Context, args: argparse.Namespace) -> int:
    registry = ctx.registry
    if args.json:
        print_json([
            {"distribution": p.distribution, "version": p.version, "entry_point": p.entry_point,
             "status": p.status, "action_types": p.action_types, "error": p.error}
            for p in registry.plugins
        ])
        return 0
    if not registry.plugins:
        print("no plugins installed in the aicmo.actions entry point group")
        return 0
    print_table(
        ["DISTRIBUTION", "VERSION", "ENTRY POINT", "STATUS", "ACTION TYPES"],
        [[p.distribution, p.version, p.entry_point,
          p.status + (f": {p.error}" if p.error else ""), ", ".join(p.action_types)]
         for p in registry.plugins],
    )
    for conflict in registry.conflicts:
        print(f"CONFLICT: {conflict}")
    return 0
