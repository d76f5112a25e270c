"""Settings from the environment, in one place, with their documented defaults.

Command-line flags override these; ``Settings.from_env`` is the only reader of ``AOL_*``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any, TypeVar

from aol_core import limits
from aol_core.errors import ConfigError
from aol_core.timeutil import parse_duration

DEFAULT_DATABASE_URL = "sqlite:///aol.db"
DEFAULT_KEY_RETENTION = timedelta(days=30)

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
    #: idempotency keys of pruned actions are remembered this long after the action finished
    #: (0: forever), so enqueuing one again returns the old action instead of running it;
    #: at least ``retention`` (None: 30 days, or ``retention`` if longer)
    key_retention: timedelta | None = None
    #: distribution names to load (None: all installed; empty: none)
    plugins: tuple[str, ...] | None = None
    #: distribution names never to load
    disabled_plugins: tuple[str, ...] = ()
    #: largest payload (and handler result), in bytes of its JSON
    max_payload_bytes: int = limits.DEFAULT_MAX_PAYLOAD_BYTES
    #: deepest nesting of a payload (and handler result)
    max_payload_depth: int = limits.DEFAULT_MAX_PAYLOAD_DEPTH
    #: largest artifact a handler may record, in bytes
    max_artifact_bytes: int = limits.DEFAULT_MAX_ARTIFACT_BYTES
    #: ``aol health`` fails when a due action has waited longer than this
    health_max_lag: timedelta = timedelta(minutes=15)
    #: how ``aol`` logs to stderr: ``text`` (readable lines) or ``json`` (one object a line)
    log_format: str = "text"
    #: bearer tokens of ``aol serve`` (never shown): may look, may also act, may probe
    serve_read_token: str | None = field(default=None, repr=False)
    serve_write_token: str | None = field(default=None, repr=False)
    serve_probes_token: str | None = field(default=None, repr=False)
    #: PostgreSQL: where workers LISTEN for new work, when the database URL goes through a
    #: pooler in transaction mode, which cannot deliver notifications (None: the database URL)
    listen_url: str | None = None

    def __post_init__(self) -> None:
        if self.key_retention and self.key_retention < self.retention:
            raise ConfigError(
                f"AOL_KEY_RETENTION ({self.key_retention}) must be at least AOL_RETENTION "
                f"({self.retention}): a pruned action's key must outlive the action"
            )

    @property
    def keys_kept_for(self) -> timedelta:
        """How long a pruned action's idempotency key is remembered (0: forever)."""
        if self.key_retention is not None:
            return self.key_retention
        return max(DEFAULT_KEY_RETENTION, self.retention) if self.retention else timedelta(0)

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


def _number(
    kind: Callable[[str], T], minimum: float, maximum: float | None = None
) -> Callable[[str, str], T]:
    def parse(var: str, raw: str) -> T:
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"{var} must be a number, not {raw!r}") from None
        if value < minimum:  # type: ignore[operator]
            raise ConfigError(f"{var} must be at least {minimum}, not {raw!r}")
        if maximum is not None and value > maximum:  # type: ignore[operator]
            raise ConfigError(f"{var} must be at most {maximum}, not {raw!r}")
        return value

    return parse


def _names(var: str, raw: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _duration(var: str, raw: str) -> timedelta:
    try:
        value = parse_duration(raw)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{var}: {exc}") from None
    if value.total_seconds() > limits.MAX_SECONDS:
        raise ConfigError(f"{var} must be at most {limits.MAX_SECONDS}s, not {raw!r}")
    return value


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def parse(var: str, raw: str) -> str:
        if raw.strip().lower() not in allowed:
            raise ConfigError(f"{var} must be one of {', '.join(allowed)}, not {raw!r}")
        return raw.strip().lower()

    return parse


def _text(var: str, raw: str) -> str:
    if not raw.strip():
        raise ConfigError(f"{var} is set but empty")
    return raw.strip()


def _listen_url(var: str, raw: str) -> str:
    from aol_core.db import parse_url  # the engine's parser: the same URLs mean the same

    if parse_url(_text(var, raw)).get_backend_name() != "postgresql":
        raise ConfigError(f"{var} must be a postgresql:// URL (only PostgreSQL can LISTEN)")
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
    "key_retention": "AOL_KEY_RETENTION",
    "plugins": "AOL_PLUGINS",
    "disabled_plugins": "AOL_DISABLE_PLUGINS",
    "max_payload_bytes": "AOL_MAX_PAYLOAD_BYTES",
    "max_payload_depth": "AOL_MAX_PAYLOAD_DEPTH",
    "max_artifact_bytes": "AOL_MAX_ARTIFACT_BYTES",
    "health_max_lag": "AOL_HEALTH_MAX_LAG",
    "log_format": "AOL_LOG_FORMAT",
    "serve_read_token": "AOL_SERVE_READ_TOKEN",
    "serve_write_token": "AOL_SERVE_WRITE_TOKEN",
    "serve_probes_token": "AOL_SERVE_PROBES_TOKEN",
    "listen_url": "AOL_LISTEN_URL",
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
    "key_retention": _duration,
    "plugins": _names,
    "disabled_plugins": _names,
    "max_payload_bytes": _number(int, 2),
    "max_payload_depth": _number(int, 1, limits.DEPTH_CEILING),
    "max_artifact_bytes": _number(int, 0),
    "health_max_lag": _duration,
    "log_format": _choice("text", "json"),
    "serve_read_token": _text,
    "serve_write_token": _text,
    "serve_probes_token": _text,
    "listen_url": _listen_url,
}
