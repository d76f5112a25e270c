"""The ``aol`` command. Parsing and printing only; the work happens in the layers below.

Errors a user can fix print one line on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError

from aol_core.cli import actions, control, db, health, plugins, prune, schedules, worker
from aol_core.cli.common import Context
from aol_core.config import Settings
from aol_core.db import mask_url
from aol_core.errors import AOLError

COMMAND_GROUPS = (db, actions, schedules, worker, control, plugins, health, prune)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aol", description="AOL: durable actions dispatched to pluggable handlers."
    )
    parser.add_argument(
        "--db", metavar="URL",
        help="database URL (default: $AOL_DATABASE_URL, else sqlite:///aol.db here)",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="what the worker reports on stderr (default INFO)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    context: Context | None = None
    try:
        context = Context(Settings.from_env().with_overrides(database_url=args.db))
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
