"""The ``aol`` command. Parsing and printing only; the work happens in the layers below.

Errors a user can fix print one line on stderr and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy.exc import OperationalError

from aol_core import limits, logformat
from aol_core.cli import (
    actions,
    control,
    db,
    explain,
    flow_limits,
    health,
    plugins,
    prune,
    scaffold,
    schedules,
    serve,
    worker,
)
from aol_core.cli.common import Context
from aol_core.cli.plugin_commands import add_plugin_commands
from aol_core.config import Settings
from aol_core.db import mask_url
from aol_core.errors import AOLError
from aol_core.plugins import PluginRegistry, installed_catalog

COMMAND_GROUPS = (db, actions, schedules, flow_limits, worker, control, plugins, scaffold, health,
                  explain, serve, prune)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

__all__ = ["Context", "build_parser", "main"]

#: set to 1 to see the traceback of an unexpected error (as --log-level DEBUG does)
TRACEBACK_ENV = "AOL_TRACEBACK"


class AolParser(argparse.ArgumentParser):
    """Every parser of ``aol`` (subcommands too) accepts the global options, so
    ``aol --db URL worker`` and ``aol worker --db URL`` mean the same; usage errors are
    one line, like every other error."""

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

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


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
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (aol ... | head): stop quietly. stdout now points at devnull,
        # so the interpreter's last flush does not fail again (Python's signal docs, "Note
        # on SIGPIPE").
        _discard_stdout()
        return 1


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser(_plugins_for_commands())
    args = parser.parse_args(argv)
    context: Context | None = None
    try:
        database_url = getattr(args, "db", None)
        context = Context(Settings.from_env().with_overrides(database_url=database_url))
        logformat.configure(getattr(args, "log_level", "INFO"), context.settings.log_format)
        code: int = args.handler(context, args)
        sys.stdout.flush()  # here, where a closed pipe can still be handled
        return code
    except AOLError as exc:
        print(f"aol: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except OperationalError as exc:
        url = mask_url(context.settings.database_url) if context else "the database"
        print(one_line(f"aol: error: cannot use database {url}: {_first_line(exc)}"),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        # A defect, not a user mistake: one line, the traceback only when asked for.
        asked = os.environ.get(TRACEBACK_ENV, "") not in ("", "0")
        if asked or getattr(args, "log_level", "INFO") == "DEBUG":
            traceback.print_exc()
        print(one_line(f"aol: internal error: {type(exc).__name__}: {_first_line(exc)} (the "
                       f"traceback: --log-level DEBUG or {TRACEBACK_ENV}=1)"), file=sys.stderr)
        return 1
    finally:
        if context is not None:
            context.close()


def one_line(message: str) -> str:
    """A message as one printable line: values a user typed may hold line breaks or bytes
    that are not UTF-8."""
    line = " ".join(message.splitlines())
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def _first_line(exc: BaseException) -> str:
    """A database error's own message, without values (see limits.database_message), or
    the first line of any other exception's."""
    database = limits.database_message(exc)
    if database is not None:
        return database
    text = limits.safe_str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is no file (in-process callers capture it)
        pass


if __name__ == "__main__":
    sys.exit(main())
