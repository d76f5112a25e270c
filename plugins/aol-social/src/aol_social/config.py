"""Accounts: one per platform from the environment, and named accounts from a file.

Secrets are never written anywhere AOL stores things: a payload names an account, the account
names the environment variables holding its secrets, and they are read when a post is sent.
The accounts file (``AOL_SOCIAL_ACCOUNTS_FILE``, TOML) refuses secrets written into it::

    [accounts.acme-mastodon]
    provider = "mastodon"
    base_url = "https://mastodon.social"
    token_env = "ACME_MASTODON_TOKEN"
"""

from __future__ import annotations

import math
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aol_core import PermanentError

ACCOUNTS_FILE_ENV = "AOL_SOCIAL_ACCOUNTS_FILE"
TIMEOUT_ENV = "AOL_SOCIAL_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
DEADLINE_ENV = "AOL_SOCIAL_DEADLINE"
#: the overall deadline of a request, when not set, in multiples of the timeout
DEFAULT_DEADLINE_TIMEOUTS = 3
#: what a URL's path is shown as when the path may hold a secret
HIDDEN_PATH = "/…"

PROVIDERS = ("bluesky", "linkedin", "mastodon", "webhook", "x")

#: the provider a platform's post goes to when the payload names no account
NATIVE_PROVIDER = {"bluesky": "bluesky", "linkedin": "linkedin", "mastodon": "mastodon",
                   "twitter": "x", "x": "x", "facebook": "webhook", "instagram": "webhook"}


@dataclass(frozen=True)
class Field:
    """One setting of an account: the environment variable of the default account, whether it
    is a secret, and its default."""

    env: str
    secret: bool = False
    default: str | None = None
    #: a count (a character limit): refused, naming where it came from, unless a whole number
    #: of at least 1, rather than silently replaced by the default
    whole_number: bool = False


#: each provider's settings; ``present`` is the one whose being set configures the account
FIELDS: dict[str, dict[str, Field]] = {
    "mastodon": {
        "base_url": Field("AOL_SOCIAL_MASTODON_BASE_URL"),
        "token": Field("AOL_SOCIAL_MASTODON_TOKEN", secret=True),
        "char_limit": Field("AOL_SOCIAL_MASTODON_CHAR_LIMIT", default="500",
                            whole_number=True),
    },
    "bluesky": {
        "base_url": Field("AOL_SOCIAL_BLUESKY_PDS_URL", default="https://bsky.social"),
        "handle": Field("AOL_SOCIAL_BLUESKY_HANDLE"),
        "app_password": Field("AOL_SOCIAL_BLUESKY_APP_PASSWORD", secret=True),
    },
    "linkedin": {
        "base_url": Field("AOL_SOCIAL_LINKEDIN_BASE_URL", default="https://api.linkedin.com"),
        "token": Field("AOL_SOCIAL_LINKEDIN_TOKEN", secret=True),
        "author": Field("AOL_SOCIAL_LINKEDIN_AUTHOR"),
        "version": Field("AOL_SOCIAL_LINKEDIN_VERSION", default="202510"),
    },
    "x": {
        "base_url": Field("AOL_SOCIAL_X_BASE_URL", default="https://api.x.com"),
        "token": Field("AOL_SOCIAL_X_TOKEN", secret=True),
    },
    "webhook": {
        "base_url": Field("AOL_SOCIAL_ENDPOINT"),
        "token": Field("AOL_SOCIAL_TOKEN", secret=True),
        "secret": Field("AOL_SOCIAL_WEBHOOK_SECRET", secret=True),
    },
}
#: the setting that, when set in the environment, makes the provider's default account exist
PRESENT = {"mastodon": "token", "bluesky": "handle", "linkedin": "token", "x": "token",
           "webhook": "base_url"}
#: settings a post cannot go out without
REQUIRED = {"mastodon": ("base_url", "token"), "bluesky": ("handle", "app_password"),
            "linkedin": ("token", "author"), "x": ("token",), "webhook": ("base_url",)}


@dataclass(frozen=True)
class Account:
    """Where and as whom to post. ``secrets`` never appears in a repr, a log or an error."""

    name: str
    provider: str
    settings: Mapping[str, str]
    #: where each secret comes from (environment variable names), for listings and errors
    sources: Mapping[str, str]
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    #: seconds a request may take overall, its answer read whole (``timeout`` bounds each read)
    deadline: float = DEFAULT_TIMEOUT * DEFAULT_DEADLINE_TIMEOUTS

    @property
    def base_url(self) -> str:
        return self.settings.get("base_url", "").rstrip("/")

    @property
    def secret_path(self) -> bool:
        """A webhook's URL may carry its secret in the path (Slack's do): never shown."""
        return self.provider == "webhook"

    def shown_url(self, url: str) -> str:
        """``url`` (the base URL or one under it) as messages, listings and proofs show it."""
        return redact_url(url, keep_path=not self.secret_path)

    def setting(self, name: str) -> str:
        value = self.settings.get(name) or self.secrets.get(name)
        if not value:
            raise PermanentError(
                f"account {self.name!r} ({self.provider}) has no {name}: set "
                f"{self.sources.get(name, name)}, or run in proof mode to record the post "
                "without sending it"
            )
        return value

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name) or None

    def check_complete(self) -> None:
        """Refuse, naming what to set, an account a post cannot go out through."""
        for name in REQUIRED[self.provider]:
            self.setting(name)
        parts = urllib.parse.urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(
                f"account {self.name!r}: {self.sources.get('base_url', 'base_url')} must be "
                f"an http:// or https:// URL, not {self.shown_url(self.base_url)!r}"
            )

    def describe(self) -> dict[str, Any]:
        """The account without its secrets: what ``aol social accounts`` shows."""
        return {
            "name": self.name,
            "provider": self.provider,
            "settings": {k: (self.shown_url(v) if k == "base_url" else v)
                         for k, v in sorted(self.settings.items())},
            "secrets": {k: {"from": self.sources[k], "set": bool(self.secrets.get(k))}
                        for k, f in FIELDS[self.provider].items() if f.secret},
        }


def redact_url(url: str, keep_path: bool = True) -> str:
    """The URL without credentials, query string or fragment (signed URLs carry their
    signature there), safe for logs and errors; without ``keep_path`` also without its path
    (``scheme://host/…``), for URLs whose path is itself the secret (Slack-style webhooks)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    path = parts.path if keep_path else HIDDEN_PATH
    return urllib.parse.urlunsplit((parts.scheme, host, path, "", ""))


def load_accounts(environ: Mapping[str, str] | None = None) -> dict[str, Account]:
    """Every configured account by name: the environment's (named after their provider)
    and the accounts file's."""
    env = os.environ if environ is None else environ
    timeout = _seconds(env, TIMEOUT_ENV, DEFAULT_TIMEOUT)
    timing = {"timeout": timeout,
              "deadline": _seconds(env, DEADLINE_ENV, timeout * DEFAULT_DEADLINE_TIMEOUTS)}
    accounts: dict[str, Account] = {}
    for provider, fields in FIELDS.items():
        if env.get(fields[PRESENT[provider]].env, "").strip():
            accounts[provider] = _env_account(provider, env, timing)
    path = env.get(ACCOUNTS_FILE_ENV, "").strip()
    if path:
        for account in _file_accounts(path, env, timing):
            accounts[account.name] = account
    return accounts


def resolve(platform: str, account_name: str | None,
            environ: Mapping[str, str] | None = None) -> Account:
    """The account a post goes out through: the one named, else the platform's own, else the
    webhook (the one way to reach platforms without a native provider)."""
    env = os.environ if environ is None else environ
    accounts = load_accounts(env)
    if account_name is not None:
        if account_name not in accounts:
            known = ", ".join(sorted(accounts)) or "none"
            raise PermanentError(f"no social account named {account_name!r} (configured: {known})")
        check_serves(accounts[account_name], platform)
        return accounts[account_name]
    native = NATIVE_PROVIDER[platform]
    for name in (native, "webhook"):
        if name in accounts:
            return accounts[name]
    wanted = FIELDS[native][PRESENT[native]].env
    alternative = "" if native == "webhook" else f" (or {FIELDS['webhook']['base_url'].env})"
    raise PermanentError(
        f"no account for {platform}: set {wanted}{alternative}, name an account in the "
        "payload, or run in proof mode to record the post without sending it"
    )


class WrongNetwork(PermanentError):
    """The payload's account publishes to another network than the payload's platform."""


def check_serves(account: Account, platform: str) -> None:
    """Refuse a post for one network named to another network's account: it would go out
    on the wrong network, checked against the wrong limits. The webhook serves any."""
    if account.provider not in (NATIVE_PROVIDER[platform], "webhook"):
        raise WrongNetwork(
            f"account {account.name!r} publishes to {account.provider}, not {platform}: name "
            f"a {NATIVE_PROVIDER[platform]} or webhook account")


def placeholder(platform: str, account_name: str | None) -> Account:
    """An unconfigured account for proof mode: requests are recorded with the documented
    default base URLs and no secrets."""
    provider = NATIVE_PROVIDER[platform]
    fields = FIELDS[provider]
    settings = {k: f.default or f"<{f.env}>" for k, f in fields.items() if not f.secret}
    return Account(account_name or provider, provider, settings,
                   {k: f.env for k, f in fields.items()})


def _env_account(provider: str, env: Mapping[str, str], timing: Mapping[str, float]) -> Account:
    settings: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for name, f in FIELDS[provider].items():
        value = env.get(f.env, "").strip() or f.default
        if value:
            (secrets if f.secret else settings)[name] = _checked(f, value, f.env)
    sources = {name: f.env for name, f in FIELDS[provider].items()}
    return Account(provider, provider, settings, sources, secrets, **timing)


def _file_accounts(path: str, env: Mapping[str, str],
                   timing: Mapping[str, float]) -> list[Account]:
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PermanentError(f"{ACCOUNTS_FILE_ENV}: cannot read {path}: {exc}") from None
    accounts = []
    for name, table in sorted(document.get("accounts", {}).items()):
        provider = table.get("provider")
        if provider not in FIELDS:
            raise PermanentError(f"{path}: account {name!r} needs provider = one of "
                                 f"{', '.join(PROVIDERS)}")
        settings: dict[str, str] = {}
        secrets: dict[str, str] = {}
        sources: dict[str, str] = {}
        for key, f in FIELDS[provider].items():
            if f.secret:
                if key in table:
                    raise PermanentError(f"{path}: account {name!r} writes its {key} into the "
                                         f"file; name an environment variable with {key}_env")
                variable = str(table.get(f"{key}_env", ""))
                sources[key] = variable or f"{key}_env in {path}"
                if variable and env.get(variable, "").strip():
                    secrets[key] = env[variable].strip()
            else:
                sources[key] = f"{key} in {path}"
                value = str(table.get(key, "")) or f.default
                if value:
                    settings[key] = _checked(f, value, f"{path}: account {name!r}: {key}")
        accounts.append(Account(name, provider, settings, sources, secrets, **timing))
    return accounts


def _checked(f: Field, value: str, where: str) -> str:
    if f.whole_number and not (value.isascii() and value.isdigit() and int(value) >= 1):
        raise PermanentError(f"{where} must be a whole number of at least 1, not {value!r}")
    return value


def _seconds(env: Mapping[str, str], variable: str, default: float) -> float:
    """A positive number of seconds from ``variable``, else ``default``."""
    raw = env.get(variable, "").strip()
    try:
        seconds = float(raw) if raw else default
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise PermanentError(f"{variable} must be a positive number of seconds, not {raw!r}")
    return seconds
