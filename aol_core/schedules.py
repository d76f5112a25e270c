"""What a schedule is and when its slots fall: cron in an IANA time zone, or a fixed interval.

A *slot* is one instant a schedule asks for an action, in UTC. Cron expressions are read in
the schedule's zone on the local wall clock (parsed by croniter), so ``0 9 * * 1`` stays at
nine o'clock all year. Where the wall clock is not one-to-one:

* a local time that does not exist (the hour skipped when clocks spring forward) runs once,
  at the first instant after the jump, and several such times (``*/15``) are that one slot;
* a local time that happens twice (the hour repeated when clocks fall back) runs once, at
  its first occurrence.

An interval (``every``) is elapsed time, counted from the Unix epoch, so every worker
computes the same slots and no clock change stretches or shrinks one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from itertools import takewhile
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from aol_core import limits
from aol_core.errors import InvalidPayload, InvalidSchedule
from aol_core.timeutil import require_aware

#: the placeholders a schedule's payload strings may hold
SLOT_PLACEHOLDER = "{slot}"
SCHEDULE_PLACEHOLDER = "{schedule}"


class CatchUp(StrEnum):
    """Which slots run after workers missed some (all were down, or the queue was paused)."""

    LATEST = "latest"  # the most recent missed slot, once
    ALL = "all"  # each missed slot, up to CATCH_UP_ALL_LIMIT of them
    SKIP = "skip"  # none: only a slot seen on time runs


#: ``all`` enqueues at most this many missed slots at once; older ones are counted as missed
CATCH_UP_ALL_LIMIT = 100
#: ``skip`` still runs a slot first seen this long after its time (workers tick every second
#: or so, busier ones a little later); an older one was missed
ON_TIME = timedelta(seconds=60)


@dataclass(frozen=True)
class Schedule:
    """A periodic action: ``action_type`` with ``payload`` at every slot of ``cron`` (in
    ``timezone``) or ``every`` interval. Declared by a plugin's ``aol_schedules`` hook or
    added by an operator (``aol schedules add``); ``source`` says which.

    In ``payload`` strings, ``{slot}`` becomes the slot's time in the schedule's zone (ISO
    8601 with its offset, e.g. ``2026-03-30T09:00:00+02:00``) and ``{schedule}`` its name,
    so a weekly summary knows which week it sums up.
    """

    name: str
    action_type: str
    cron: str | None = None
    every: timedelta | None = None
    timezone: str = "UTC"
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False)
    catch_up: CatchUp | str = CatchUp.LATEST
    source: str = "plugin"

    def __post_init__(self) -> None:
        try:  # stored in every tick's state row: one PostgreSQL refuses stops every tick
            limits.check_text(self.name, "a schedule name", limits.MAX_NAME_CHARS)
        except InvalidPayload as exc:
            raise InvalidSchedule(str(exc)) from None
        if (self.cron is None) == (self.every is None):
            raise InvalidSchedule(f"schedule {self.name}: give a cron expression or an "
                                  "interval (every), not both or neither")
        if self.cron is not None and len(self.cron) > limits.MAX_NAME_CHARS:
            raise InvalidSchedule(f"schedule {self.name}: a cron expression has at most "
                                  f"{limits.MAX_NAME_CHARS} characters, not {len(self.cron)}")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise InvalidSchedule(f"schedule {self.name}: not a cron expression: {self.cron!r}")
        if self.every is not None and (
            self.every < timedelta(seconds=1) or self.every % timedelta(seconds=1)
            or self.every > timedelta(seconds=limits.MAX_SECONDS)
        ):
            raise InvalidSchedule(f"schedule {self.name}: an interval is a whole number of "
                                  f"seconds, at least 1 and at most {limits.MAX_SECONDS}, "
                                  f"not {self.every}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSchedule(f"schedule {self.name}: unknown time zone "
                                  f"{self.timezone!r} (use an IANA name like Europe/Berlin)"
                                  ) from None
        try:
            object.__setattr__(self, "catch_up", CatchUp(self.catch_up))
        except ValueError:
            raise InvalidSchedule(f"schedule {self.name}: catch-up is one of "
                                  f"{', '.join(CatchUp)}, not {self.catch_up!r}") from None
        try:
            limits.check_text(self.action_type, "its action type",
                              limits.MAX_ACTION_TYPE_CHARS)
            # what every database stores (no NaN, NUL, lone surrogate); the size and depth
            # settings are checked at each enqueue, where they are known
            limits.encode_json(dict(self.payload), "its payload", max_bytes=sys.maxsize,
                               max_depth=limits.DEPTH_CEILING)
        except InvalidPayload as exc:
            raise InvalidSchedule(f"schedule {self.name}: {exc}") from None

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def expression(self) -> str:
        """The cron expression, or the interval as ``every N s``."""
        if self.cron is not None:
            return self.cron
        assert self.every is not None
        return f"every {int(self.every.total_seconds())}s"

    def slots_after(self, after: datetime) -> Iterator[datetime]:
        """Every slot later than ``after``, in order, without end (UTC)."""
        after = require_aware(after, "after")
        return self._cron_slots(after) if self.cron is not None else self._interval_slots(after)

    def slots(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """The slots later than ``after`` and no later than ``until``, in order."""
        until = require_aware(until, "until")
        return takewhile(lambda slot: slot <= until, self.slots_after(after))

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot later than ``after``; None for a cron expression with no more (one
        whose year field has passed, or a date no calendar has, like ``0 0 30 2 *``)."""
        return next(self.slots_after(after), None)

    def payload_for(self, slot: datetime) -> dict[str, Any]:
        """The payload with ``{slot}`` and ``{schedule}`` filled in."""
        local = slot.astimezone(self.zone).isoformat()
        return {key: _fill(value, local, self.name) for key, value in self.payload.items()}

    def _cron_slots(self, after: datetime) -> Iterator[datetime]:
        assert self.cron is not None
        walls = croniter(self.cron, after.astimezone(self.zone).replace(tzinfo=None))
        previous = after
        while True:
            try:
                wall = walls.get_next(datetime)
            except CroniterBadDateError:  # no more slots: the schedule has ended
                return
            slot = local_instant(wall, self.zone)
            # A repeated or skipped hour maps wall times to instants already passed.
            if slot > previous:
                yield slot
                previous = slot

    def _interval_slots(self, after: datetime) -> Iterator[datetime]:
        assert self.every is not None
        step = int(self.every.total_seconds())
        seconds = (int(after.timestamp()) // step + 1) * step
        while True:
            yield datetime.fromtimestamp(seconds, UTC)
            seconds += step


def local_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall-clock time in ``zone``: an ambiguous time's first
    occurrence, and for a time the clocks skipped, the first instant after the skip."""
    first = wall.replace(tzinfo=zone)  # fold=0: the earlier of two, for an ambiguous time
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # Skipped: read with the offset after the jump it lies before it, with the offset before
    # the jump after it. Search that span, to the second, for when the offset changes.
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(first.timestamp())
    low, high = min(low, high), max(low, high)
    after_jump = _offset(high, zone)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(middle, zone) == after_jump:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _offset(timestamp: int, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, zone).utcoffset()


def _fill(value: Any, slot: str, name: str) -> Any:
    if isinstance(value, str):
        return value.replace(SLOT_PLACEHOLDER, slot).replace(SCHEDULE_PLACEHOLDER, name)
    if isinstance(value, list):
        return [_fill(item, slot, name) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, slot, name) for key, item in value.items()}
    return value
