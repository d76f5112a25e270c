"""Exceptions: two that handlers raise to steer retries, and the one-line errors users see."""

from __future__ import annotations


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (bad input): the action fails at once."""


class RetryableError(Exception):
    """Raised by a handler for a transient failure; ``delay`` (seconds) overrides the backoff."""

    def __init__(self, message: str = "", *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


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


class ForeignTables(AOLError):
    """Tables with AOL's names that AOL did not create (the original AOL's, usually)."""
