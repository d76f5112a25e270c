"""The pruning pass workers run: one worker per period deletes old history for everyone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine

from aol_core import queue, worker_registry
from aol_core.config import Settings

#: one pruning pass per this period, by whichever worker asks first
PERIOD = timedelta(hours=1)
#: registrations of workers gone this long are deleted
WORKERS_KEPT_FOR = timedelta(days=1)


@dataclass(frozen=True)
class Pruned:
    actions: int
    keys: int
    workers: int


def prune_if_my_turn(
    engine: Engine, settings: Settings, now: datetime, *, keep_going: Callable[[], bool]
) -> Pruned | None:
    """If no worker pruned in the last :data:`PERIOD`, take the turn and delete finished
    SUCCESS and CANCELLED actions older than the retention, pruned actions' idempotency keys
    older than the key retention, and registrations of long-gone workers. None when another
    worker has the turn. A retention of 0 keeps that kind of history forever.
    """
    if not queue.take_pruning_turn(engine, PERIOD, now):
        return None
    actions = keys = 0
    if settings.retention:
        actions = queue.prune(engine, now - settings.retention, keep_going=keep_going)
    if settings.keys_kept_for:
        keys = queue.prune_keys(engine, now - settings.keys_kept_for)
    with engine.begin() as conn:
        workers = worker_registry.prune_gone(conn, now - WORKERS_KEPT_FOR)
    return Pruned(actions, keys, workers)
