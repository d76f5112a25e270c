"""How ``aol`` logs: readable lines by default, or one JSON object per line
(``AOL_LOG_FORMAT=json``) for log shippers, which then need no pattern to parse them.

Lines about one action carry its id, type, attempt, the event and how long it took as
fields of their own (passed as ``extra=`` by the code that logs them), so a shipper can
index and alert on them without reading the message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

#: fields a line carries when the code that logged it knows them (``extra=``), in order
CONTEXT_FIELDS = ("worker", "action_id", "action_type", "attempt", "event", "duration_ms")


class JsonLines(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC, milliseconds), ``level``,
    ``logger``, ``message``, then whichever of :data:`CONTEXT_FIELDS` the record carries,
    and ``exception`` (the traceback) when one was logged."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: str, log_format: str) -> None:
    """Send log records of ``level`` and above to stderr in ``log_format`` (see FORMATS)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)
