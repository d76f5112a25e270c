"""``aol db upgrade``: create or migrate AOL's tables and the installed plugins' tables;
``aol db adopt``: take over a database of the original AOL."""

from __future__ import annotations

import argparse
from typing import Any

from aol_core import adopt, schema
from aol_core.cli.common import Context
from aol_core.db import mask_url


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema")
    sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    upgrade = sub.add_parser("upgrade", help="create or migrate the tables (safe to repeat)")
    upgrade.set_defaults(handler=run_upgrade)
    take_over = sub.add_parser(
        "adopt",
        help="take over a database of the original AOL: move its tables aside, create "
             "AOL's, copy actions, logs, flags and plugin data (one transaction; safe to repeat)",
    )
    take_over.add_argument("--dry-run", action="store_true",
                           help="report what would move and be copied, then roll back")
    take_over.set_defaults(handler=run_adopt)


def run_upgrade(ctx: Context, args: argparse.Namespace) -> int:
    created = schema.upgrade(ctx.engine, ctx.registry)
    where = mask_url(ctx.engine.url)
    revision = schema.current_revision(ctx.engine)
    if created:
        print(f"{where}: created {', '.join(created)}; schema at revision {revision}")
    else:
        print(f"{where}: schema is current (revision {revision})")
    return 0


def run_adopt(ctx: Context, args: argparse.Namespace) -> int:
    report = adopt.adopt(ctx.engine, ctx.registry, ctx.settings, dry_run=args.dry_run)
    print(f"{mask_url(ctx.engine.url)}:" + (" dry run, rolled back" if args.dry_run else ""))
    for line in report.lines():
        print(f"  {line}")
    return 0
