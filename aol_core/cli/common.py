"""What every command needs: settings, a lazily created engine, and output helpers."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from aol_core import limits, schema
from aol_core.config import Settings
from aol_core.db import (
    create_engine,
    parse_url,
    require_existing_database,
    session_factory,
    sqlite_file,
)
from aol_core.models import Action
from aol_core.plugins import PluginRegistry, installed_catalog


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        """Rows whose JSON cannot be decoded come back as their text, so they can be shown."""
        return create_engine(self.settings.database_url,
                             json_deserializer=limits.loads_for_display)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def registry(self) -> PluginRegistry:
        return installed_catalog()

    def existing_engine(self) -> Engine:
        """The engine, after checking a SQLite file exists (reading must not create it)."""
        require_existing_database(self.settings.database_url)
        return self.engine

    def database_exists(self) -> bool:
        """False for a SQLite file not created yet (reading would create it)."""
        path = sqlite_file(parse_url(self.settings.database_url))
        return path is None or path.exists()

    def ready_engine(self) -> Engine:
        """The engine, after checking the schema is current (so errors say what to run)."""
        schema.require_current(self.existing_engine())
        return self.engine

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argument type for whole numbers from ``low`` to ``high`` (what a column holds)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number, not {excerpt(text)!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be at least {low}, not {value}" if value < low
                else f"must be at most {high}, not {excerpt(str(value))}")
        return value

    return parse


#: counts and limits; ids (64-bit columns)
positive_int = whole_number(1, limits.INT32_MAX)
action_id = whole_number(1, limits.MAX_ID)
int32 = whole_number(limits.INT32_MIN, limits.INT32_MAX)


def text_arg(text: str) -> str:
    """Text that can be stored and compared: a command line may carry undecodable bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError(
            f"not valid UTF-8: {limits.storable_text(text, 60)!r}") from None
    return text


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {excerpt(text)!r}") from None
    if not math.isfinite(value) or abs(value) > limits.MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds up to {limits.MAX_SECONDS}, not {excerpt(text)}")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text}")
    return value


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


ACTION_FIELDS = (
    "id", "action_type", "status", "priority", "attempts", "max_attempts", "idempotency_key",
    "payload", "result", "last_error", "proof_mode", "not_before", "created_at", "updated_at",
    "started_at", "finished_at", "lease_owner", "lease_expires_at",
)


def action_dict(action: Action) -> dict[str, Any]:
    out = {}
    for name in ACTION_FIELDS:
        value = getattr(action, name)
        out[name] = iso(value) if isinstance(value, datetime) else value
    return out


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def excerpt(text: str | None, width: int = 60) -> str:
    """The first line of ``text``, cut to ``width``; "" for no text, or only white space."""
    lines = (text or "").strip().splitlines()
    if not lines:
        return ""
    line = lines[0]
    return line if len(line) <= width else line[: width - 1] + "…"
