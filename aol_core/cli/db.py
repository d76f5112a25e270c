"""``aol db upgrade``: migrate AOL's tables and the installed plugins'; ``aol db status``;
``aol db adopt``: take over a database of the original AOL."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aol_core import adopt, schema
from aol_core.cli.common import Context, print_json, print_table
from aol_core.db import mask_url


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema")
    sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    upgrade = sub.add_parser(
        "upgrade", help="create or migrate the core's and every plugin's tables (safe to "
                        "repeat, and to run from several machines at once)")
    upgrade.set_defaults(handler=run_upgrade)
    take_over = sub.add_parser(
        "adopt",
        help="take over a database of the original AOL: move its tables aside, create "
             "AOL's, copy actions, logs, flags and plugin data (one transaction; safe to repeat)",
    )
    take_over.add_argument("--dry-run", action="store_true",
                           help="report what would move and be copied, then roll back")
    take_over.set_defaults(handler=run_adopt)
    status = sub.add_parser("status", help="each component's revision (exit 1 if any is behind)")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)


def run_upgrade(ctx: Context, args: argparse.Namespace) -> int:
    created = schema.upgrade(ctx.engine, ctx.registry)
    where = mask_url(ctx.engine.url)
    revision = schema.current_revision(ctx.engine)
    if created:
        print(f"{where}: created {', '.join(created)}; schema at revision {revision}")
    else:
        print(f"{where}: schema is current (revision {revision})")
    for component in schema.status(ctx.engine, ctx.registry)[1:]:
        if component.migrations:
            print(f"{component.name}: revision {component.current}")
    for plugin in ctx.registry.broken:  # a deploy pipeline must hear it here, not at start-up
        print(f"aol: error: plugin {plugin.label} did not load, so its tables were not "
              f"created or migrated: {plugin.error}", file=sys.stderr)
    return 1 if ctx.registry.broken else 0


def run_adopt(ctx: Context, args: argparse.Namespace) -> int:
    report = adopt.adopt(ctx.engine, ctx.registry, ctx.settings, dry_run=args.dry_run)
    print(f"{mask_url(ctx.engine.url)}:" + (" dry run, rolled back" if args.dry_run else ""))
    for line in report.lines():
        print(f"  {line}")
    return 0


def run_status(ctx: Context, args: argparse.Namespace) -> int:
    components = schema.status(ctx.engine, ctx.registry)
    if args.json:
        print_json([{"component": c.name, "current": c.current, "head": c.head,
                     "migrations": c.migrations, "missing_tables": list(c.missing),
                     "behind": c.behind} for c in components])
    else:
        print_table(["COMPONENT", "CURRENT", "HEAD", "STATE"],
                    [[c.name, c.current or "-", c.head or "-", _state(c)] for c in components])
    return 1 if any(c.behind for c in components) else 0


def _state(component: schema.Component) -> str:
    if component.missing:
        return f"behind: missing {', '.join(component.missing)} (run: aol db upgrade)"
    return "behind (run: aol db upgrade)" if component.behind else "current"
