"""Settings from the environment, in one place, with their documented defaults.

Command-line flags override these; ``Settings.from_env`` is the only reader of ``AOL_*``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import timedelta
from typing import Any, TypeVar

from aol_core.errors import ConfigError
from aol_core.timeutil import parse_duration

DEFAULT_DATABASE_URL = "sqlite:///aol.db"

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Every tunable; the table in README.md lists the same names and defaults."""

    database_url: str = DEFAULT_DATABASE_URL
    #: attempts an action gets unless it or its type says otherwise
    max_attempts: int = 10
    #: a claimed action's lease; the worker extends it every third of this while running
    lease_seconds: float = 60.0
    #: actions claimed in one statement
    batch_size: int = 10
    #: longest an idle worker waits before looking again (PostgreSQL also wakes on NOTIFY)
    poll_interval: float = 1.0
    #: how long a stopping worker lets running actions finish
    grace_seconds: float = 30.0
    #: first retry delay; doubles each attempt, with jitter
    retry_base_seconds: float = 2.0
    #: longest retry delay
    retry_max_seconds: float = 3600.0
    #: finished SUCCESS and CANCELLED actions older than this are pruned (0: keep forever)
    retention: timedelta = timedelta(days=7)
    #: distribution names to load (None: all installed; empty: none)
    plugins: tuple[str, ...] | None = None
    #: distribution names never to load
    disabled_plugins: tuple[str, ...] = ()
    #: ``aol health`` fails when a due action has waited longer than this
    health_max_lag: timedelta = timedelta(minutes=15)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = ENV_NAMES[f.name]
            if var in env:
                values[f.name] = PARSERS[f.name](var, env[var])
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        """Apply flags given on the command line (None means: not given)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _number(kind: Callable[[str], T], minimum: float) -> Callable[[str, str], T]:
    def parse(var: str, raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{var} must be a number, not {raw!r}") from None
        if value < minimum:  # type: ignore[operator]
            raise ConfigError(f"{var} must be at least {minimum}, not {raw!r}")
        return value

    return parse


def _names(var: str, raw: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _duration(var: str, raw: str) -> timedelta:
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise ConfigError(f"{var}: {exc}") from None


def _text(var: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{var} is set but empty")
    return raw.strip()


ENV_NAMES = {
    "database_url": "AOL_DATABASE_URL",
    "max_attempts": "AOL_MAX_ATTEMPTS",
    "lease_seconds": "AOL_LEASE_SECONDS",
    "batch_size": "AOL_BATCH_SIZE",
    "poll_interval": "AOL_POLL_INTERVAL",
    "grace_seconds": "AOL_GRACE_SECONDS",
    "retry_base_seconds": "AOL_RETRY_BASE_SECONDS",
    "retry_max_seconds": "AOL_RETRY_MAX_SECONDS",
    "retention": "AOL_RETENTION",
    "plugins": "AOL_PLUGINS",
    "disabled_plugins": "AOL_DISABLE_PLUGINS",
    "health_max_lag": "AOL_HEALTH_MAX_LAG",
}

PARSERS: dict[str, Callable[[str, str], Any]] = {
    "database_url": _text,
    "max_attempts": _number(int, 1),
    "lease_seconds": _number(float, 1),
    "batch_size": _number(int, 1),
    "poll_interval": _number(float, 0.01),
    "grace_seconds": _number(float, 0),
    "retry_base_seconds": _number(float, 0),
    "retry_max_seconds": _number(float, 0),
    "retention": _duration,
    "plugins": _names,
    "disabled_plugins": _names,
    "health_max_lag": _duration,
}
