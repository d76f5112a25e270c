"""Timezone-aware UTC time: the only kind AOL stores or compares."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


#: set by the test kit's fixed clock (``aol_core.testing.FixedClock``); None: the real time
_fixed_now: datetime | None = None


def utcnow() -> datetime:
    """Now, in UTC: what AOL stores and compares, and what plugins should use too (a test
    can then fix it with the kit's ``aol_clock`` fixture)."""
    return datetime.now(UTC) if _fixed_now is None else _fixed_now


def clock_is_fixed() -> bool:
    """Whether a test fixed the clock: then a driver that keeps time on the database's clock
    uses :func:`utcnow` instead, so the test's clock is the only one."""
    return _fixed_now is not None


def require_aware(value: datetime, what: str) -> datetime:
    """Return ``value`` in UTC; a naive datetime is refused rather than guessed at."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``7d`` (or ``0``)."""
    text = text.strip()
    if text == "0":
        return timedelta(0)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    try:
        return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    except OverflowError:  # past timedelta's 999999999 days, or the float's range
        raise ValueError(f"duration {text!r} is longer than any date can reach") from None


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """Parse ISO 8601 with an offset (``2026-11-25T10:00:00+00:00``) or ``+30s/+5m/+1h/+2d``."""
    if text.strip().startswith("+"):
        try:
            return (now or utcnow()) + parse_duration(text.strip()[1:])
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ISO 8601 with an offset, or +30s, +5m, +1h, +2d)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset; add one, e.g. {text}+00:00")
    return parsed.astimezone(UTC)
