"""What a handler learns about the action it runs, and how it records logs and artifacts.

Logs and artifacts are buffered and written in the transaction that settles the action, so
they survive a handler's rollback and never hold SQLite's write lock while the handler runs.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from aol_core import limits
from aol_core.errors import InvalidPayload

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class ArtifactRef:
    """Where an artifact is kept (``aol://artifacts/<action id>/<name>``) and its SHA-256."""

    uri: str
    sha256: str


@dataclass(frozen=True)
class LogEntry:
    level: str
    message: str
    artifact_ref: str | None = None
    artifact_sha256: str | None = None


@dataclass(frozen=True)
class PendingArtifact:
    name: str
    content: bytes
    media_type: str
    sha256: str


def artifact_uri(action_id: int, name: str) -> str:
    return f"aol://artifacts/{action_id}/{name}"


def normalize_level(level: str | int) -> str:
    """Map a level name or ``logging`` number to one of the standard names, or refuse it."""
    name = logging.getLevelName(level) if isinstance(level, int) else level.upper()
    if name not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    return str(name)


@dataclass
class ActionContext:
    """Passed to ``handle_action`` as ``context`` for handlers that accept it."""

    action_id: int
    action_type: str
    attempt: int
    max_attempts: int
    idempotency_key: str
    worker: str
    logs: list[LogEntry] = field(default_factory=list)
    artifacts: dict[str, PendingArtifact] = field(default_factory=dict)
    max_artifact_bytes: int = limits.DEFAULT_MAX_ARTIFACT_BYTES
    #: the slot (an aware UTC datetime) of the schedule that enqueued the action, so a
    #: weekly summary knows its week; None for an action no schedule enqueued
    slot: datetime | None = None
    #: set by the worker when the action is no longer this attempt's (see ``cancelled``);
    #: None where nobody watches (actions sharing a transaction are too quick to need it)
    cancel_signal: threading.Event | None = field(default=None, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once an operator cancelled (or failed) the action, or the attempt lost its
        lease: its outcome will be refused and its writes rolled back, so a long handler may
        poll this and stop early. The worker notices within about a poll interval."""
        return self.cancel_signal is not None and self.cancel_signal.is_set()

    def log(self, level: str | int, message: str) -> None:
        """Add a line to this attempt's execution log (kept even if the handler fails).

        Made storable rather than refused: NULs are written as ``\\x00`` and a line over
        :data:`~aol_core.limits.MAX_LOG_LINE_CHARS` is cut, with a note saying so."""
        self.logs.append(LogEntry(normalize_level(level),
                                  limits.storable_text(message, limits.MAX_LOG_LINE_CHARS)))

    def record_artifact(
        self, name: str, content: bytes | str, media_type: str = "text/plain"
    ) -> ArtifactRef:
        """Store a proof artifact in the database, keyed by action and name.

        A retry recording the same name replaces the earlier content instead of adding a
        copy. The artifact and a log line pointing at it are kept even if the handler fails.
        """
        if not name or "/" in name:
            raise ValueError(f"artifact name must be non-empty and contain no '/': {name!r}")
        limits.check_text(name, "artifact name", limits.MAX_ARTIFACT_NAME_CHARS)
        limits.check_text(media_type, "artifact media type", limits.MAX_ARTIFACT_NAME_CHARS)
        data = content.encode() if isinstance(content, str) else bytes(content)
        if len(data) > self.max_artifact_bytes:
            raise InvalidPayload(f"artifact {name!r} is {len(data)} bytes, over the limit of "
                                 f"{self.max_artifact_bytes} (AOL_MAX_ARTIFACT_BYTES)")
        digest = hashlib.sha256(data).hexdigest()
        self.artifacts[name] = PendingArtifact(name, data, media_type, digest)
        ref = ArtifactRef(artifact_uri(self.action_id, name), digest)
        self.logs.append(
            LogEntry("INFO", f"recorded artifact {name} ({media_type}, {len(data)} bytes)",
                     ref.uri, digest)
        )
        return ref
