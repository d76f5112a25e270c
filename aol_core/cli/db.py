"""``aol db upgrade``: create or migrate AOL's tables and the installed plugins' tables."""

from __future__ import annotations

import argparse
from typing import Any

from aol_core import schema
from aol_core.cli.common import Context
from aol_core.db import mask_url


def register(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema")
    sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND", required=True)
    upgrade = sub.add_parser("upgrade", help="create or migrate the tables (safe to repeat)")
    upgrade.set_defaults(handler=run_upgrade)


def run_upgrade(ctx: Context, args: argparse.Namespace) -> int:
    created = schema.upgrade(ctx.engine, ctx.registry)
    where = mask_url(ctx.engine.url)
    revision = schema.current_revision(ctx.engine)
    if created:
        print(f"{where}: created {', '.join(created)}; schema at revision {revision}")
    else:
        print(f"{where}: schema is current (revision {revision})")
    return 0
