"""``aol social accounts [--json]`` and ``aol social verify [ACCOUNT]``: parse and print what
:mod:`aol_social.accounts` computes, nothing more."""

from __future__ import annotations

import argparse

from aol_core import AOLError, PermanentError
from aol_core.cli import Context
from aol_core.cli.plugin_commands import PluginCommands

from aol_social import accounts


def register(commands: PluginCommands) -> None:
    social = commands.add_parser("social", help="social accounts: list them, check them")
    actions = social.add_subparsers(dest="social_command", required=True)
    listing = actions.add_parser("accounts", help="list the configured accounts, no secrets")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(handler=run_accounts)
    check = actions.add_parser("verify", help="check credentials with each platform "
                               "(exit 1 if any is refused)")
    check.add_argument("account", nargs="?", help="only this account")
    check.set_defaults(handler=run_verify)


def run_accounts(ctx: Context, args: argparse.Namespace) -> int:
    try:
        print(accounts.list_accounts(as_json=args.json))
    except PermanentError as exc:  # a broken accounts file: one line, exit 1
        raise AOLError(str(exc)) from None
    return 0


def run_verify(ctx: Context, args: argparse.Namespace) -> int:
    """Bluesky's session is kept in the database, so verification reuses it."""
    try:
        results = accounts.verify(args.account, ctx.engine)
    except PermanentError as exc:
        raise AOLError(str(exc)) from None
    if not results:
        raise AOLError("no social accounts configured (see the aol-social README)")
    for result in results:
        print(f"{result.account}\t{'ok' if result.ok else 'FAILED'}\t{result.detail}")
    return 0 if all(result.ok for result in results) else 1
