"""AOL: a durable action queue whose worker dispatches each action to the plugin declaring its type.

The public face: what plugin authors and enqueuing applications import.
"""

from aol_core.compat import ActionQueue
from aol_core.config import Settings
from aol_core.context import ActionContext, ArtifactRef
from aol_core.db import create_engine, session_factory
from aol_core.embed import run_worker
from aol_core.errors import (
    AOLError,
    Hold,
    IdempotencyConflict,
    InvalidPayload,
    PermanentError,
    RetryableError,
    Snooze,
    UnknownActionType,
)
from aol_core.hookspecs import hookimpl, hookspec
from aol_core.models import (
    NAMING_CONVENTION,
    TYPE_ANNOTATION_MAP,
    Action,
    JSONValue,
    Status,
    UTCDateTime,
)
from aol_core.plugins import PLUGIN_API_VERSION
from aol_core.queue import Enqueued, NewAction, enqueue, enqueue_many
from aol_core.schedules import CatchUp, Schedule
from aol_core.specs import ActionSpec, Cap, RateLimit
from aol_core.timeutil import require_aware, utcnow

__all__ = [
    "NAMING_CONVENTION",
    "PLUGIN_API_VERSION",
    "TYPE_ANNOTATION_MAP",
    "AOLError",
    "Action",
    "ActionContext",
    "ActionQueue",
    "ActionSpec",
    "ArtifactRef",
    "Cap",
    "CatchUp",
    "Enqueued",
    "Hold",
    "IdempotencyConflict",
    "InvalidPayload",
    "JSONValue",
    "NewAction",
    "PermanentError",
    "RateLimit",
    "RetryableError",
    "Schedule",
    "Settings",
    "Snooze",
    "Status",
    "UTCDateTime",
    "UnknownActionType",
    "create_engine",
    "enqueue",
    "enqueue_many",
    "hookimpl",
    "hookspec",
    "require_aware",
    "run_worker",
    "session_factory",
    "utcnow",
]
