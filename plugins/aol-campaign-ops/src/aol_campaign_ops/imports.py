"""CSV imports of calendar items, tasks and metric entries: every row is checked by the same
functions that add one, and the file goes in whole or not at all, with each refused row named
and explained."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy.orm import Session

from aol_campaign_ops import api, views
from aol_campaign_ops.models import TaskType

ITEM_COLUMNS = ("platform", "publish_at", "content", "account", "media", "alt")
TASK_COLUMNS = ("title", "due", "type")
METRIC_COLUMNS = ("platform", "impressions", "engagement", "clicks", "recorded_at")


@dataclass
class ImportReport:
    """The ids added, in file order, and ``(line, reason)`` for each refused row."""

    added: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def import_items(session: Session, campaign_id: int, source: TextIO) -> ImportReport:
    """Columns ``platform``, ``publish_at`` (a time; without offset, in the campaign's zone)
    and ``content`` (required), ``account``, ``media`` (files or URLs separated by ``|``) and
    ``alt`` (their alt texts, in the same order, separated by ``|``)."""
    campaign = api.get_campaign(session, campaign_id)

    def add(row: dict[str, str]) -> int:
        return api.add_calendar_item(
            session, campaign.id, _required(row, "platform"), _required(row, "content"),
            views.parse_time(_required(row, "publish_at"), campaign.timezone, "publish_at"),
            account=row.get("account", "").strip() or None,
            media=_listed(row, "media"), alt_texts=_listed(row, "alt"),
        ).id

    return _import(session, source, ITEM_COLUMNS, ("platform", "publish_at", "content"), add)


def import_tasks(session: Session, campaign_id: int, source: TextIO) -> ImportReport:
    """Columns ``title`` (required), ``due`` (a time; without offset, in the campaign's zone)
    and ``type`` (default MANUAL)."""
    campaign = api.get_campaign(session, campaign_id)

    def add(row: dict[str, str]) -> int:
        due = row.get("due", "").strip()
        return api.add_task(
            session, campaign.id, _required(row, "title"),
            task_type=_task_type(row.get("type", "").strip() or "MANUAL"),
            due_at=views.parse_time(due, campaign.timezone, "due") if due else None,
        ).id

    return _import(session, source, TASK_COLUMNS, ("title",), add)


def import_metrics(session: Session, campaign_id: int, source: TextIO) -> ImportReport:
    """Columns ``platform`` (required), ``impressions``, ``engagement``, ``clicks`` (whole
    numbers, default 0) and ``recorded_at`` (a time, default now)."""
    campaign = api.get_campaign(session, campaign_id)

    def add(row: dict[str, str]) -> int:
        at = row.get("recorded_at", "").strip()
        return api.record_metric(
            session, campaign.id, _required(row, "platform"),
            impressions=_count(row, "impressions"), engagement=_count(row, "engagement"),
            clicks=_count(row, "clicks"),
            recorded_at=views.parse_time(at, campaign.timezone, "recorded_at") if at else None,
        ).id

    return _import(session, source, METRIC_COLUMNS, ("platform",), add)


def _import(
    session: Session, source: TextIO, known: tuple[str, ...], required: tuple[str, ...],
    add: Callable[[dict[str, str]], Any],
) -> ImportReport:
    reader = csv.DictReader(source)
    header = [name.strip() for name in reader.fieldnames or ()]
    missing = [name for name in required if name not in header]
    unknown = [name for name in header if name not in known]
    if missing or unknown:
        raise ValueError(
            f"the CSV header must name {', '.join(required)} and may name "
            f"{', '.join(known)}; " + "; ".join(
                part for part in (f"missing: {', '.join(missing)}" if missing else "",
                                  f"unknown: {', '.join(unknown)}" if unknown else "") if part))
    reader.fieldnames = header
    report = ImportReport()
    for row in reader:
        line = reader.line_num
        if None in row:
            report.refused.append((line, "more fields than the header names"))
            continue
        savepoint = session.begin_nested()
        try:
            report.added.append(add({key: value or "" for key, value in row.items()}))
            savepoint.commit()
        except (ValueError, LookupError) as exc:
            savepoint.rollback()
            report.refused.append((line, str(exc).strip("'\"")))
    return report


def _required(row: dict[str, str], name: str) -> str:
    value = row.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is empty")
    return value


def _listed(row: dict[str, str], name: str) -> list[str]:
    text = row.get(name, "").strip()
    return [part.strip() for part in text.split("|")] if text else []


def _task_type(text: str) -> str:
    try:
        return TaskType(text.upper()).value
    except ValueError:
        raise ValueError(f"type {text!r} is not one of {', '.join(TaskType)}") from None


def _count(row: dict[str, str], name: str) -> int:
    text = row.get(name, "").strip() or "0"
    if not text.isdigit():
        raise ValueError(f"{name} {text!r} is not a whole number of 0 or more")
    return int(text)
