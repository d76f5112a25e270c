"""A fixed clock for tests: ``aol_core.utcnow()`` returns the time the test sets, for the
plugin and for the core's own timestamps (enqueue, due times, leases), until it advances."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from aol_core import timeutil

#: the kit's default "now": a Monday, so weekly logic has a predictable start
DEFAULT_NOW = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, now: datetime = DEFAULT_NOW) -> None:
        self.now = timeutil.require_aware(now, "the fixed clock's time")

    def set(self, now: datetime) -> None:
        self.now = timeutil.require_aware(now, "the fixed clock's time")
        timeutil._fixed_now = self.now

    def advance(self, delta: timedelta | None = None, **units: float) -> datetime:
        """Move time forward (``advance(minutes=5)``): retries and delayed actions fall due."""
        self.set(self.now + (delta or timedelta(**units)))
        return self.now

    @contextmanager
    def installed(self) -> Iterator[FixedClock]:
        previous = timeutil._fixed_now
        timeutil._fixed_now = self.now
        try:
            yield self
        finally:
            timeutil._fixed_now = previous
