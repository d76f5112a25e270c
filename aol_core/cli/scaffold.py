"""``aol new-plugin NAME``: write a complete plugin distribution to start from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aol_core import scaffold
from aol_core.cli.common import Context


def register(commands: Any) -> None:
    new = commands.add_parser(
        "new-plugin", help="write a plugin distribution (handler, tests, packaging) to start from")
    new.add_argument("name", metavar="NAME", help="its distribution name, e.g. acme-mail")
    new.add_argument("--directory", type=Path, metavar="DIR",
                     help="where to write it (default ./NAME; must be empty or absent)")
    new.add_argument("--action-type", metavar="TYPE",
                     help="the action type it declares (default: NAME in capitals)")
    new.set_defaults(handler=run_new_plugin)


def run_new_plugin(ctx: Context, args: argparse.Namespace) -> int:
    plugin = scaffold.plan(args.name, args.directory, args.action_type)
    written = scaffold.write(plugin)
    where = plugin.directory
    print(f"wrote {len(written)} files to {where}/ ({plugin.name}, action type "
          f"{plugin.action_type}); next:\n"
          f"  pip install -e '{where}[test]'\n"
          f"  pytest {where}\n"
          f"  aol plugins check {plugin.name}")
    return 0
