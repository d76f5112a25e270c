"""``aol actions types`` and ``aol actions schema TYPE``: what can be enqueued, and how."""

from __future__ import annotations

import argparse
import difflib
from typing import Any

from aol_core.cli.common import Context, print_json, print_table
from aol_core.errors import UnknownActionType


def register(sub: Any) -> None:
    """Add the subcommands to ``aol actions``'s subparsers."""
    types = sub.add_parser("types", help="every routable action type with its plugin")
    types.add_argument("--json", action="store_true")
    types.set_defaults(handler=run_types)
    schema = sub.add_parser("schema", help="an action type's payload schema (JSON)")
    schema.add_argument("action_type", metavar="TYPE")
    schema.set_defaults(handler=run_schema)


def run_types(ctx: Context, args: argparse.Namespace) -> int:
    routes = sorted(ctx.registry.routes.items())
    listed = [{"action_type": name, "plugin": route.plugin.distribution,
               "plugin_version": route.plugin.version, "description": route.spec.description,
               "max_attempts": route.spec.max_attempts, "timeout": route.spec.timeout,
               "has_payload_schema": route.spec.payload_schema is not None}
              for name, route in routes]
    if args.json:
        print_json(listed)
    elif not listed:
        print("no routable action types: see aol plugins")
    else:
        print_table(["TYPE", "PLUGIN", "MAX ATTEMPTS", "TIMEOUT", "DESCRIPTION"],
                    [[t["action_type"], f"{t['plugin']} {t['plugin_version']}",
                      t["max_attempts"] or "default", t["timeout"] or "-", t["description"]]
                     for t in listed])
    return 0


def run_schema(ctx: Context, args: argparse.Namespace) -> int:
    route = ctx.registry.routes.get(args.action_type)
    if route is None:
        close = difflib.get_close_matches(args.action_type.upper(), ctx.registry.routes, n=1)
        hint = f"; did you mean {close[0]}?" if close else "; see aol actions types"
        raise UnknownActionType(f"no installed plugin declares {args.action_type}{hint}")
    print_json(route.spec.payload_schema if route.spec.payload_schema is not None
               else {"description": f"{route.spec.name} declares no payload schema: "
                                    "any JSON object is accepted"})
    return 0
