"""Exceptions: two that handlers raise to steer retries, and the one-line errors users see."""

from __future__ import annotations

from datetime import datetime


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (bad input): the action fails at once."""


class RetryableError(Exception):
    """Raised by a handler for a transient failure; ``delay`` (seconds) overrides the backoff."""

    def __init__(self, message: str = "", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Snooze(Exception):
    """Raised by a handler that cannot run yet (a platform's rate limit): the action waits
    until ``until`` (aware UTC) without using an attempt; ``reason`` says why."""

    def __init__(self, until: datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


class Hold(Exception):
    """Raised by a handler when only a person can decide what happens next (a post that may
    or may not have gone out): the action is held (status HELD) with ``reason``."""

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


class PluginError(AOLError):
    """Plugins that cannot be loaded together: conflicts or import failures."""


class SchemaNotCurrent(AOLError):
    """The database schema is missing or older than this version of AOL needs."""
