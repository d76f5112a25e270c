"""The ``aol`` command. Parsing and printing only; the work happens in the layers below.

Errors a user can fix print one line on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import OperationalError

from aol_core.cli import actions, control, db, health, plugins, prune, scaffold, worker
from aol_core.cli.common import Context
from aol_core.cli.plugin_commands import add_plugin_commands
from aol_core.config import Settings
from aol_core.db import mask_url
from aol_core.errors import AOLError
from aol_core.plugins import PluginRegistry, installed_catalog

COMMAND_GROUPS = (db, actions, worker, control, plugins, scaffold, health, prune)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

__all__ = ["Context", "build_parser", "main"]


class AolParser(argparse.ArgumentParser):
    """Every parser of ``aol`` (subcommands too) accepts the global options, so
    ``aol --db URL worker`` and ``aol worker --db URL`` mean the same."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flags = self.add_argument_group("global options (before or after the command)")
        flags.add_argument(
            "--db", metavar="URL", default=argparse.SUPPRESS,
            help="database URL (default: $AOL_DATABASE_URL, else sqlite:///aol.db here)",
        )
        flags.add_argument(
            "--log-level", choices=LOG_LEVELS, type=str.upper, default=argparse.SUPPRESS,
            help="what the worker reports on stderr (default INFO)",
        )


def build_parser(registry: PluginRegistry | None = None) -> argparse.ArgumentParser:
    """The parser; with ``registry``, the commands its plugins add as well."""
    parser = AolParser(
        prog="aol", description="AOL: durable actions dispatched to pluggable handlers."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    if registry is not None:
        add_plugin_commands(commands, registry)
    return parser


def _plugins_for_commands() -> PluginRegistry | None:
    """The installed plugins, or None when the settings that select them are invalid (the
    command then reports that as its error)."""
    try:
        return installed_catalog()
    except AOLError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_plugins_for_commands())
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO"), stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    context: Context | None = None
    try:
        database_url = getattr(args, "db", None)
        context = Context(Settings.from_env().with_overrides(database_url=database_url))
        code: int = args.handler(context, args)
        return code
    except AOLError as exc:
        print(f"aol: error: {exc}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        url = mask_url(context.settings.database_url) if context else "the database"
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        print(f"aol: error: cannot use database {url}: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if context is not None:
            context.close()


if __name__ == "__main__":
    sys.exit(main())
