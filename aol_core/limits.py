"""The documented limits on what AOL stores, and the checks that enforce them.

Whatever AOL accepts it must be able to store on both databases and read back: PostgreSQL
refuses NaN, Infinity and NUL in JSON and NUL in text; Python's JSON decoder stops at its
recursion limit; a column has a width. So enqueue refuses a payload over the limits, a
handler's result over them is a permanent failure, and log lines and error text are made
storable instead (they describe a failure, and must not cause another one).
"""

from __future__ import annotations

import json
import re
import sqlite3
import traceback
from typing import Any

from sqlalchemy.exc import DBAPIError

from aol_core.errors import InvalidPayload, PermanentError

MIB = 1024 * 1024
#: defaults of the settings AOL_MAX_PAYLOAD_BYTES, AOL_MAX_PAYLOAD_DEPTH, AOL_MAX_ARTIFACT_BYTES
DEFAULT_MAX_PAYLOAD_BYTES = 1 * MIB
DEFAULT_MAX_PAYLOAD_DEPTH = 32
DEFAULT_MAX_ARTIFACT_BYTES = 10 * MIB
#: the deepest nesting any setting may allow, and the deepest a stored row may be read at:
#: decoding takes interpreter stack per level, and a worker thread must keep some to spare
DEPTH_CEILING = 200
#: log lines and error text longer than this are cut, with a note saying how much
MAX_LOG_LINE_CHARS = 8 * 1024
MAX_ERROR_CHARS = 8 * 1024
#: integer columns (priority, max_attempts) hold 32 bits on both databases; ids 64
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
MAX_ID = 2**63 - 1
#: the longest time a flag or setting may give, in seconds (about 31 years): dates that far
#: off stay computable
MAX_SECONDS = 10**9
#: widths of the text columns an enqueue or an artifact fills
MAX_ACTION_TYPE_CHARS = 100
MAX_KEY_CHARS = 255
#: schedule names and cron expressions, and the payload field an operator keys limits by
MAX_NAME_CHARS = 200
MAX_ARTIFACT_NAME_CHARS = 255

_ENCODE = json.JSONEncoder(sort_keys=True, allow_nan=False).encode


class Undecodable(str):
    """Stored JSON text that cannot be decoded, kept as text so that it can still be shown."""


def encode_json(value: Any, what: str, *, max_bytes: int, max_depth: int) -> str:
    """``value`` as JSON text with sorted keys (equal values encode equally), or an
    :class:`InvalidPayload` naming the limit ``value`` breaks."""
    try:
        text = _ENCODE(value)
    except RecursionError:
        raise InvalidPayload(f"{what} is nested deeper than the limit of {max_depth} "
                             "levels (AOL_MAX_PAYLOAD_DEPTH)") from None
    except ValueError as exc:
        if "Out of range float" in str(exc):
            raise InvalidPayload(f"{what} contains NaN or Infinity, which JSON cannot hold; "
                                 "use null or a string") from None
        raise InvalidPayload(f"{what} is not JSON: {exc}") from None
    except TypeError as exc:
        raise InvalidPayload(f"{what} is not JSON: {exc}") from None
    if len(text) > max_bytes:  # ASCII: the encoder escapes everything else
        raise InvalidPayload(f"{what} is {len(text)} bytes of JSON, over the limit of "
                             f"{max_bytes} (AOL_MAX_PAYLOAD_BYTES)")
    # Cheap bounds first: a value has no more levels than brackets, and its strings can hold
    # a NUL or a lone surrogate only where the text has such an escape.
    if text.count("{") + text.count("[") > max_depth and _depth(value) > max_depth:
        raise InvalidPayload(f"{what} is nested {_depth(value)} levels deep, over the limit "
                             f"of {max_depth} (AOL_MAX_PAYLOAD_DEPTH)")
    if "\\u0000" in text or "\\ud" in text:
        _check_strings(value, what)
    return text


def check_result(result: Any, *, max_bytes: int, max_depth: int) -> None:
    """A handler's result must be storable like a payload; if not, the attempt fails for
    good (running it again would return the same), recorded once with the reason."""
    try:
        encode_json(result, "handler result", max_bytes=max_bytes, max_depth=max_depth)
    except InvalidPayload as exc:
        raise PermanentError(f"{exc}; AOL cannot store it") from None


def decode_object(text: str | bytes | None, what: str) -> dict[str, Any]:
    """Stored JSON text back as the object it encodes, or :class:`InvalidPayload` saying why
    it cannot be (a row written by hand or by an older version of AOL)."""
    value = decode_json(text, what)
    if not isinstance(value, dict):
        raise InvalidPayload(f"{what} is a JSON {_json_kind(value)}, not an object")
    return value


def decode_json(text: str | bytes | None, what: str) -> Any:
    """Any stored JSON value: no NaN or Infinity, at most :data:`DEPTH_CEILING` levels."""
    if text is None:
        raise InvalidPayload(f"{what} is missing")
    try:
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8")
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidPayload(f"{what} is nested too deep to decode") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN
        raise InvalidPayload(f"{what} is not valid JSON: {exc}") from None
    if text.count("{") + text.count("[") > DEPTH_CEILING and _depth(value) > DEPTH_CEILING:
        raise InvalidPayload(f"{what} is nested {_depth(value)} levels deep, over the "
                             f"{DEPTH_CEILING} that AOL reads")
    return value


def loads_for_display(text: str | bytes) -> Any:
    """A JSON deserializer for engines that show rows: what cannot be decoded comes back as
    :class:`Undecodable` text instead of failing the whole query."""
    try:
        return decode_json(text, "stored JSON")
    except InvalidPayload:
        raw = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else text
        return Undecodable(raw)


def check_text(value: object, what: str, max_chars: int) -> None:
    """Refuse a name or key a column cannot hold: not text, empty, too long, NUL, lone
    surrogates."""
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"{what} must be non-empty text, not {value!r}")
    if len(value) > max_chars:
        raise InvalidPayload(f"{what} is {len(value)} characters long, over the limit of "
                             f"{max_chars}")
    _check_string(value, what)


def check_int32(value: object, what: str) -> None:
    """Refuse what the 32-bit integer columns cannot hold."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidPayload(f"{what} must be a whole number, not {value!r}")
    if not INT32_MIN <= value <= INT32_MAX:
        raise InvalidPayload(f"{what} must be between {INT32_MIN} and {INT32_MAX}, "
                             f"not {value}")


def storable_text(text: object, max_chars: int) -> str:
    """``text`` as every database stores it: NULs written as ``\\x00``, lone surrogates
    escaped, and at most ``max_chars`` characters followed by a note of how many were cut."""
    line = safe_str(text)
    if "\x00" in line:
        line = line.replace("\x00", "\\x00")
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = line.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(line) > max_chars:
        line = f"{line[:max_chars]}… [{len(line) - max_chars} more characters cut]"
    return line


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception, storable and at most :data:`MAX_ERROR_CHARS`."""
    return storable_text(f"{type(exc).__name__}: {_message(exc)}", MAX_ERROR_CHARS)


def describe_traceback(exc: BaseException) -> str:
    """Where ``exc`` was raised, ending in :func:`describe_error` (not in the exception's
    full text, nor its chained causes: a database error's may quote the row's values)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"Traceback (most recent call last):\n{frames}{describe_error(exc)}"


def _message(exc: BaseException) -> str:
    """An exception's message; for a database error, :func:`database_message`."""
    message = database_message(exc)
    return safe_str(exc) if message is None else message


#: where PostgreSQL's primary message quotes a name or a value: ``"..."`` ("" inside)
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
#: what a quoted value is replaced with
REDACTED = '"…"'
#: diagnostic fields in which PostgreSQL names the objects an error is about
_NAMED_OBJECTS = ("schema_name", "table_name", "column_name", "datatype_name",
                  "constraint_name")
#: SQLSTATE class of syntax errors and undefined objects: what they quote are names
#: from the statement's own text (a table, a column, a function)
_STATEMENT_NAMES = "42"


def database_message(exc: BaseException) -> str | None:
    """For a database error (SQLAlchemy's, or a driver's own), the database's primary
    message and its error code; None for any other exception.

    Nothing that may hold a value of a row or a parameter (a payload, a result): not
    PostgreSQL's DETAIL and CONTEXT lines (a violating row, a key), not the statement nor
    its parameters, and in the primary message no quoted text but the names of objects
    the server reports the error to be about (a constraint, a table, a column, a type),
    or, for syntax errors and undefined objects, names from the statement's text. So a
    unique or check violation names its constraint, and an input the server could not
    convert is shown as ``"…"``:
    ``invalid input syntax for type integer: "…" (SQLSTATE 22P02)``.
    """
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if isinstance(primary, str) and primary:  # PostgreSQL (psycopg)
        code = getattr(diag, "sqlstate", None) or ""
        if not code.startswith(_STATEMENT_NAMES):
            named = {getattr(diag, field, None) for field in _NAMED_OBJECTS} - {None}
            names = {f'"{name}"' for name in named}
            primary = _QUOTED.sub(
                lambda quoted: quoted[0] if quoted[0] in names else REDACTED, primary)
        return f"{primary} (SQLSTATE {code})" if code else primary
    if not isinstance(exc, DBAPIError) and not isinstance(orig, sqlite3.Error):
        return None
    # SQLite's messages name constraints and columns, never a row's values
    text = safe_str(orig).strip()
    first = text.splitlines()[0] if text else type(orig).__name__
    code = getattr(orig, "sqlite_errorname", None)
    return f"{first} ({code})" if code else first


def safe_str(value: object) -> str:
    """``str(value)``, even for objects whose ``__str__`` raises."""
    try:
        return value if isinstance(value, str) else str(value)
    except Exception:
        return f"<{type(value).__name__} whose str() failed>"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """Levels of nesting (a scalar 0, ``{}`` 1), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_strings(value: Any, what: str) -> None:
    """Every key and string in ``value`` free of NUL and lone surrogates."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_string(item, what)
        elif isinstance(item, dict):
            stack.extend(str(key) for key in item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _check_string(text: str, what: str) -> None:
    if "\x00" in text:
        raise InvalidPayload(f"{what} contains a NUL character (\\u0000), which PostgreSQL "
                             f"cannot store: {storable_text(text, 60)!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload(f"{what} contains a lone surrogate, which is not Unicode text: "
                             f"{storable_text(text, 60)!r}") from None


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "number"
