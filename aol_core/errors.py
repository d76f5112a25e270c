"""Exceptions: those handlers raise to steer their action, and the one-line errors users see."""

from __future__ import annotations

from datetime import datetime, timedelta

from aol_core.timeutil import require_aware


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (bad input): the action fails at once."""


class RetryableError(Exception):
    """Raised by a handler for a transient failure; ``delay`` (seconds) overrides the backoff."""

    def __init__(self, message: str = "", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Snooze(Exception):
    """Raised by a handler to put its action back to waiting until ``until`` (an aware time,
    or a delay from now), e.g. when a platform answered "rate limited until T".

    The attempt is given back (the action keeps its attempt count), the handler's writes roll
    back, and the action's log says why.
    """

    def __init__(self, until: datetime | timedelta, reason: str = "") -> None:
        super().__init__(reason)
        self.until = until if isinstance(until, timedelta) else require_aware(until, "until")
        self.reason = reason

    def due(self, now: datetime) -> datetime:
        return now + self.until if isinstance(self.until, timedelta) else self.until


class Hold(Exception):
    """Raised by a handler when the outcome is unknown and a retry could repeat an external
    effect (a post request that timed out after it was sent): the action becomes HELD until
    a person releases it (``aol actions release``) or records the outcome
    (``aol actions resolve``). The handler's writes roll back; ``reason`` is kept.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AOLError(Exception):
    """A mistake or refusal the user should see as one clear line (the CLI exits 1 with it)."""


class ConfigError(AOLError):
    """A setting (flag or environment variable) has a value AOL cannot use."""


class UnknownActionType(AOLError):
    """Enqueue of a type that no installed plugin or registered worker declares."""


class InvalidPayload(AOLError):
    """A payload that is not a JSON object or breaks its action type's declared schema."""


class IdempotencyConflict(AOLError):
    """An idempotency key already names an action with another type or payload."""


class ActionNotFound(AOLError):
    """No action has the id the user gave."""


class InvalidTransition(AOLError):
    """An operator command that the action's current status does not allow."""


class InvalidSchedule(AOLError):
    """A schedule that cannot run: a bad cron expression, interval, time zone or policy."""


class ScheduleNotFound(AOLError):
    """No schedule has the name the user gave, or it cannot be changed the way asked."""


class PluginError(AOLError):
    """Plugins that cannot be loaded together: conflicts or import failures."""


class SchemaNotCurrent(AOLError):
    """The database schema is missing or older than this version of AOL needs."""


class ForeignTables(AOLError):
    """Tables with AOL's names that AOL did not create (the original AOL's, usually)."""
