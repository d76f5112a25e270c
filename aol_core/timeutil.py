"""Timezone-aware UTC time: the only kind AOL stores or compares."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_aware(value: datetime, what: str) -> datetime:
    """Return ``value`` in UTC; a naive datetime is refused rather than guessed at."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """Parse ISO 8601 with an offset (``2026-11-25T10:00:00+00:00``) or ``+30s/+5m/+1h/+2d``."""
    match = _RELATIVE.match(text.strip())
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return (now or utcnow()) + timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use ISO 8601 with an offset, or +30s, +5m, +1h, +2d)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset; add one, e.g. {text}+00:00")
    return parsed.astimezone(UTC)
