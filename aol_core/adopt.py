"""``aol db adopt``: take over a database of the original AOL (``aicmo.orchestration``).

In one transaction: the original's tables are renamed aside (``aol_actions`` becomes
``legacy_aol_actions``: nothing is deleted), AOL's schema is created, the original's actions
(with their idempotency keys and ids), execution logs and control flags are copied into it,
and each plugin's ``aol_adopt_legacy`` hook takes over the original's tables of its own
(aol-campaign-ops: the campaign tables). Then, as ``aol db upgrade`` does, the plugins'
tables still missing are created. Running it again finds nothing of the original's and
changes nothing. A dry run does all of it and rolls back, so its report is exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, MetaData, Table, insert, inspect, select, update
from sqlalchemy.engine import Connection

from aol_core import schema
from aol_core.compat import as_utc, fitted_artifact, original_level
from aol_core.config import Settings
from aol_core.drivers import driver_for
from aol_core.errors import AOLError
from aol_core.models import CLAIMABLE, FINISHED, Status, actions_table, control_table, logs_table
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import utcnow

#: what a table moved aside is called: the prefix, then its name
LEGACY_PREFIX = "legacy_"

#: the original's tables, each told from AOL's (which reuses two of the names) by a column
#: only the original's has
ORIGINAL_TABLES = {
    "aol_actions": "payload_json",
    "aol_execution_logs": "ts_utc",
    "aol_control_flags": "updated_at_utc",
    "aol_lease": "renewed_at_utc",
    "aol_tick_ledger": "actions_attempted",
}

#: the original's status words as AOL's; READY meant due, which PENDING means here
STATUSES = {"PENDING": "PENDING", "READY": "PENDING",
            **{status: status for status in (*CLAIMABLE, *FINISHED)}}

#: rows read and written per statement
CHUNK = 1000


@dataclass
class AdoptionReport:
    """What adoption moved and copied; plugins add theirs in ``aol_adopt_legacy``."""

    moved: list[tuple[str, str]] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def moved_aside(self, table: str, new_name: str) -> None:
        self.moved.append((table, new_name))

    def copied_rows(self, what: str, count: int, detail: str = "") -> None:
        self.copied.append(f"{count} {what}" + (f" ({detail})" if detail else ""))

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def adopted(self) -> bool:
        return bool(self.moved)

    def lines(self) -> list[str]:
        if not self.adopted:
            return ["nothing to adopt: no tables of the original AOL under their own names"]
        return [
            *(f"moved aside {old} -> {new}" for old, new in self.moved),
            *(f"copied {line}" for line in self.copied),
            *self.notes,
        ]


def legacy_name(table: str) -> str:
    return f"{LEGACY_PREFIX}{table}"


def has_column(conn: Connection, table: str, column: str) -> bool:
    """Whether ``table`` exists with ``column``: how an original's table is told from ours."""
    inspector = inspect(conn)
    return inspector.has_table(table) and column in {
        c["name"] for c in inspector.get_columns(table)
    }


def original_tables(conn: Connection) -> list[str]:
    """The original AOL's tables still under their own names."""
    return [table for table, marker in ORIGINAL_TABLES.items() if has_column(conn, table, marker)]


def move_aside(conn: Connection, table: str, report: AdoptionReport) -> Table:
    """Rename ``table`` to its legacy name and return it, reflected, for copying from."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    new_name = legacy_name(table)
    if inspect(conn).has_table(new_name):
        raise AOLError(f"cannot move {table} aside: {new_name} exists already (an earlier "
                       f"adoption?); rename or drop one of them, then run aol db adopt again")
    Operations(MigrationContext.configure(conn)).rename_table(table, new_name)
    report.moved_aside(table, new_name)
    return Table(new_name, MetaData(), autoload_with=conn)


def insert_keeping_ids(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows with their ``id`` given, and make the ids generated afterwards follow."""
    if rows:
        conn.execute(insert(table), list(rows))
        driver_for(conn).follow_explicit_ids(conn, table.name)


def read_in_chunks(conn: Connection, table: Table) -> Iterator[Sequence[Any]]:
    ordered = select(table).order_by(*table.primary_key.columns)
    yield from conn.execute(ordered.execution_options(yield_per=CHUNK)).partitions(CHUNK)


def adopt(
    engine: Engine, registry: PluginRegistry, settings: Settings, *, dry_run: bool = False
) -> AdoptionReport:
    """Take over a database of the original AOL in one transaction; see the module's doc."""
    report = AdoptionReport()
    with engine.connect() as conn, conn.begin() as transaction:
        found = {table: move_aside(conn, table, report) for table in original_tables(conn)}
        if found:
            _create_schema(conn)
        adopted = _copy_actions(conn, found.get("aol_actions"), registry, settings, report)
        _copy_logs(conn, found.get("aol_execution_logs"), adopted, report)
        _copy_flags(conn, found.get("aol_control_flags"), report)
        for kept in ("aol_lease", "aol_tick_ledger"):
            if kept in found:
                report.note(f"{legacy_name(kept)}: kept aside only (AOL has no use for it)")
        registry.manager.hook.aol_adopt_legacy(connection=conn, report=report)
        if dry_run:
            transaction.rollback()
    if report.adopted and not dry_run:
        created = schema.upgrade(engine, registry)
        if created:
            report.note(f"created the plugins' tables still missing: {', '.join(created)}")
    return report


def _create_schema(conn: Connection) -> None:
    from alembic import command

    config = schema._config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _copy_actions(
    conn: Connection, legacy: Table | None, registry: PluginRegistry, settings: Settings,
    report: AdoptionReport,
) -> dict[int, int]:
    """Copy the original's actions under their ids; return ``{id: attempts}`` of those copied."""
    if legacy is None:
        return {}
    now = utcnow()
    adopted: dict[int, int] = {}
    counts: dict[str, int] = {}
    for chunk in read_in_chunks(conn, legacy):
        rows = [_action(row._mapping, registry, settings, now) for row in chunk]
        insert_keeping_ids(conn, actions_table, rows)
        for row in rows:
            adopted[row["id"]] = row["attempts"]
            counts[row["status"]] = counts.get(row["status"], 0) + 1
    report.copied_rows("actions", len(adopted),
                       ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    return adopted


def _action(
    row: Mapping[str, Any], registry: PluginRegistry, settings: Settings, now: datetime
) -> dict[str, Any]:
    """One original action as AOL's: naive times are UTC, a missing not-before is the
    creation time, and an open action keeps at least one attempt."""
    created = as_utc(row["created_at_utc"]) or now
    status = STATUSES.get(str(row["status"]))
    error = row["last_error"]
    if status is None:
        status, error = Status.FAILED.value, f"adopted with the unknown status {row['status']!r}"
    payload = _payload(row["payload_json"])
    if payload is None:
        payload = {"payload_json": row["payload_json"]}
        if status in CLAIMABLE:
            status, error = Status.FAILED.value, "adopted: its payload_json is not a JSON object"
    attempts = int(row["attempts"] or 0)
    spec = registry.specs.get(str(row["action_type"]))
    max_attempts = (spec.max_attempts if spec is not None else None) or settings.max_attempts
    if status in CLAIMABLE:
        max_attempts = max(max_attempts, attempts + 1)
    return {
        "id": row["id"],
        "action_type": row["action_type"],
        "payload": payload,
        "idempotency_key": row["idempotency_key"],
        "status": status,
        "priority": 0,
        "attempts": attempts,
        "max_attempts": max(max_attempts, attempts),
        "not_before": as_utc(row["not_before_utc"]) or created,
        "fencing_token": 0,
        "last_error": error,
        "proof_mode": False,
        "created_at": created,
        "updated_at": now,
        "finished_at": now if status in FINISHED else None,
    }


def _payload(text: str | None) -> dict[str, Any] | None:
    if not text:
        return {}
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _copy_logs(
    conn: Connection, legacy: Table | None, adopted: Mapping[int, int], report: AdoptionReport
) -> None:
    if legacy is None:
        return
    copied = orphans = 0
    for chunk in read_in_chunks(conn, legacy):
        rows = [_log_line(row, adopted[row.action_id]) for row in chunk
                if row.action_id in adopted]
        orphans += len(chunk) - len(rows)
        if rows:
            conn.execute(insert(logs_table), rows)
        copied += len(rows)
    report.copied_rows("execution log lines", copied,
                       f"{orphans} of no known action left aside" if orphans else "")


def _log_line(row: Any, attempt: int) -> dict[str, Any]:
    message, artifact_ref = fitted_artifact(row.message or "", row.artifact_ref)
    return {
        "action_id": row.action_id, "attempt": attempt,
        "ts": as_utc(row.ts_utc) or utcnow(), "level": _level(row.level),
        "message": message, "worker": None,
        "artifact_ref": artifact_ref, "artifact_sha256": row.artifact_sha256,
    }


def _level(level: str | None) -> str:
    """The original stored any word; one AOL does not know is INFO (the message stays)."""
    try:
        return original_level(level or "INFO")
    except ValueError:
        return "INFO"


def _copy_flags(conn: Connection, legacy: Table | None, report: AdoptionReport) -> None:
    if legacy is None:
        return
    row = conn.execute(select(legacy).order_by(legacy.c.id).limit(1)).first()
    if row is None:
        return
    flags = {"paused": bool(row.paused), "killed": bool(row.killed),
             "proof_mode": bool(row.proof_mode)}
    conn.execute(update(control_table).where(control_table.c.id == 1)
                 .values(**flags, updated_at=utcnow()))
    report.copied_rows("control flags", 1, ", ".join(f"{k}={v}" for k, v in flags.items()))
    if flags["killed"]:
        report.note("the kill switch is set, as it was: workers exit until aol control revive")
