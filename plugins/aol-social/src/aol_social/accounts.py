"""What ``aol social accounts`` and ``aol social verify`` do, as plain functions: the CLI
(once the core offers plugins a subcommand hook) only parses arguments and prints these.

Neither ever shows a secret: listings name the environment variable a secret comes from and
whether it is set; a failed verification shows the platform's message, which never echoes
the credentials sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from aol_core import PermanentError
from sqlalchemy.engine import Engine

from aol_social import config, providers
from aol_social.providers.base import ProviderError
from aol_social.providers.transport import AnswerLost, NotSent, client


def list_accounts(as_json: bool = False, environ: Mapping[str, str] | None = None) -> str:
    """Every configured account, without secrets: a table, or JSON with ``as_json``."""
    accounts = [a.describe() for a in config.load_accounts(environ).values()]
    if as_json:
        return json.dumps(accounts, indent=2, sort_keys=True)
    if not accounts:
        return "no social accounts configured (see the aol-social README)"
    lines = []
    for account in accounts:
        settings = ", ".join(f"{k}={v}" for k, v in account["settings"].items())
        secrets = ", ".join(f"{k} from {s['from']} ({'set' if s['set'] else 'NOT SET'})"
                            for k, s in account["secrets"].items())
        lines.append(f"{account['name']}\t{account['provider']}\t{settings}\t{secrets}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Verified:
    account: str
    ok: bool
    detail: str


def verify(name: str | None = None, engine: Engine | None = None,
           environ: Mapping[str, str] | None = None) -> list[Verified]:
    """Check each account's credentials (or the one named) with its platform. ``engine`` is
    where Bluesky keeps its session (verification then reuses it rather than logging in)."""
    accounts = config.load_accounts(environ)
    if name is not None:
        if name not in accounts:
            return [Verified(name, False, "no such account")]
        accounts = {name: accounts[name]}
    return [_verify_one(account, engine) for account in accounts.values()]


def _verify_one(account: config.Account, engine: Engine | None) -> Verified:
    try:
        account.check_complete()
        provider = providers.for_account(account, engine)
        with client(account.timeout) as http:
            return Verified(account.name, True, provider.verify(http))
    except (ProviderError, NotSent, AnswerLost, PermanentError, RuntimeError) as exc:
        return Verified(account.name, False, str(exc))
