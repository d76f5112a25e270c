"""What a plugin declares about an action type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aol_core.errors import InvalidPayload

if TYPE_CHECKING:
    from jsonschema.protocols import Validator


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` starts in any ``period`` (a sliding window), for the whole type or,
    with ``key``, separately for each value of that payload field (one account, say)."""

    count: int
    period: timedelta
    key: str | None = None

    def __post_init__(self) -> None:
        if self.count < 1 or self.period <= timedelta(0):
            raise ValueError("a rate limit needs a count of at least 1 and a positive period")


@dataclass(frozen=True)
class Cap:
    """At most ``count`` actions RUNNING at once, for the whole type or, with ``key``,
    separately for each value of that payload field."""

    count: int
    key: str | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("a concurrency cap needs a count of at least 1")


def key_field(rate: RateLimit | None, cap: Cap | None) -> str | None:
    """The payload field of the first of these limits kept per key, None if neither is."""
    return next((limit.key for limit in (rate, cap) if limit is not None and limit.key),
                None)


@dataclass(frozen=True)
class ActionSpec:
    """An action type a plugin handles.

    ``payload_schema`` is a JSON Schema checked at enqueue and again before dispatch (a
    payload that breaks it fails permanently, it is never retried). ``max_attempts``
    overrides the default for actions of this type enqueued without their own.
    ``timeout`` (seconds) bounds a run: past it the worker stops extending the lease, so
    the action is taken over and the late outcome is refused.

    ``share_transaction`` declares that the handler only touches the database (no network,
    no files, no other outside effect), so it may share a transaction with other actions:
    a worker then runs fast actions of such types several to a commit, and may run one
    again if that shared commit fails. Leave it False for anything else, so a handler with
    outside effects never repeats them for a neighbour and never holds SQLite's write lock
    across a network call.

    ``rate_limit`` and ``concurrency`` hold across every worker through the database
    (see :mod:`aol_core.flow`): an action over either waits unclaimed, using no attempt.
    Operators may override both with ``aol limits set``.
    """

    name: str
    description: str = ""
    payload_schema: dict[str, Any] | None = field(default=None, hash=False, compare=False)
    max_attempts: int | None = None
    timeout: float | None = None
    share_transaction: bool = False
    rate_limit: RateLimit | None = None
    concurrency: Cap | None = None

    def __post_init__(self) -> None:
        keys = {limit.key for limit in (self.rate_limit, self.concurrency)
                if limit is not None and limit.key is not None}
        if len(keys) > 1:  # an action carries one flow key (see aol_core.flow)
            raise ValueError(f"{self.name}: a rate limit and a concurrency cap kept per key "
                             f"share one key field, not {' and '.join(sorted(keys))}")

    @property
    def flow_key_field(self) -> str | None:
        """The payload field its per-key limits are kept by, None without one."""
        return key_field(self.rate_limit, self.concurrency)

    @cached_property
    def validator(self) -> Validator | None:
        """The schema's validator, built once; raises ``SchemaError`` for a broken schema."""
        if self.payload_schema is None:
            return None
        import jsonschema  # only plugins that declare schemas pay for importing it

        cls = jsonschema.validators.validator_for(
            self.payload_schema, default=jsonschema.Draft202012Validator
        )
        cls.check_schema(self.payload_schema)
        # Formats are checked where jsonschema can without optional packages (date, email,
        # ipv4/6, uuid, regex); "uri" and "date-time" need jsonschema[format-nongpl].
        validator: Validator = cls(self.payload_schema, format_checker=cls.FORMAT_CHECKER)
        return validator

    def validate(self, payload: Mapping[str, Any]) -> None:
        """Refuse a payload that breaks the declared schema, naming every rule it breaks."""
        if self.validator is None:
            return
        errors = sorted(self.validator.iter_errors(payload),
                        key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            broken = "; ".join(
                f"at {'/'.join(str(p) for p in e.absolute_path) or 'payload'}: {e.message}"
                for e in errors)
            raise InvalidPayload(f"invalid payload for {self.name} {broken}")
