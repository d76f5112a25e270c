"""``aol campaigns ...``: parse, call :mod:`aol_campaign_ops.api` and
:mod:`aol_campaign_ops.views` in one transaction, print. A mistake (an unknown campaign, a bad
time, zone or address) is one line and exit 1, with nothing written."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aol_core import AOLError
from aol_core.cli import Context
from aol_core.cli.plugin_commands import PluginCommands
from sqlalchemy.orm import Session

from aol_campaign_ops import api, imports, report, views
from aol_campaign_ops.models import CampaignStatus, TaskStatus, TaskType


def register(commands: PluginCommands) -> None:
    campaigns = commands.add_parser("campaigns", help="campaigns: create, list, show, add work")
    verbs = campaigns.add_subparsers(dest="campaigns_command", required=True)

    create = verbs.add_parser("create", help="create a campaign; prints its id")
    create.add_argument("name")
    create.add_argument("--owner", metavar="EMAIL", help="who escalations and reports go to")
    create.add_argument("--timezone", default="UTC", help="IANA zone, e.g. Europe/Berlin")
    create.add_argument("--starts", metavar="DAY", help="first day, YYYY-MM-DD")
    create.add_argument("--ends", metavar="DAY", help="last day, YYYY-MM-DD")
    create.add_argument("--status", default="ACTIVE", choices=list(CampaignStatus))
    create.set_defaults(handler=run_create)

    listing = verbs.add_parser("list", help="every campaign")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(handler=run_list)

    show = verbs.add_parser("show", help="a campaign, its upcoming posts and its open tasks")
    show.add_argument("campaign", type=int)
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(handler=run_show)

    item = verbs.add_parser("add-item", help="schedule a post on the calendar; prints its id")
    item.add_argument("campaign", type=int)
    item.add_argument("platform", help="as POST_SOCIAL names it, e.g. mastodon")
    item.add_argument("content")
    item.add_argument("--at", metavar="TIME", required=True,
                      help="when to publish, e.g. 2030-01-08T10:00 (in the campaign's zone)")
    item.add_argument("--account", help="the aol-social account (default: the platform's)")
    item.add_argument("--media", metavar="PATH_OR_URL", action="append", default=[],
                      help="an image to attach (repeat for more)")
    item.add_argument("--alt", metavar="TEXT", action="append", default=[],
                      help="the alt text of each --media, in order")
    item.set_defaults(handler=run_add_item)

    task = verbs.add_parser("add-task", help="add a task for a person; prints its id")
    task.add_argument("campaign", type=int)
    task.add_argument("title")
    task.add_argument("--due", metavar="TIME",
                      help="deadline, e.g. 2030-01-08T10:00 (in the campaign's zone)")
    task.add_argument("--type", default="MANUAL", choices=list(TaskType), dest="task_type")
    task.set_defaults(handler=run_add_task)

    metric = verbs.add_parser("add-metric", help="record a platform's numbers; prints its id")
    metric.add_argument("campaign", type=int)
    metric.add_argument("platform")
    for name in ("impressions", "engagement", "clicks"):
        metric.add_argument(f"--{name}", type=int, default=0)
    metric.add_argument("--at", metavar="TIME", help="when measured (default: now)")
    metric.set_defaults(handler=run_add_metric)

    for kind, columns in (("items", imports.ITEM_COLUMNS), ("tasks", imports.TASK_COLUMNS),
                          ("metrics", imports.METRIC_COLUMNS)):
        bulk = verbs.add_parser(
            f"import-{kind}",
            help=f"add {kind} from a CSV file (columns {', '.join(columns)}): all rows or none")
        bulk.add_argument("campaign", type=int)
        bulk.add_argument("file", type=Path, help="the CSV file, with a header row")
        bulk.set_defaults(handler=run_import, kind=kind)

    done = verbs.add_parser("done", help="mark a task done")
    done.add_argument("task", type=int)
    done.set_defaults(handler=run_done)


@contextmanager
def transaction(ctx: Context) -> Iterator[Session]:
    """One transaction for the command; a mistake rolls it back and becomes one line."""
    ctx.ready_engine()
    try:
        with ctx.sessions.begin() as session:
            yield session
    except (ValueError, LookupError) as exc:
        raise AOLError(str(exc).strip("'\"")) from None


def run_create(ctx: Context, args: argparse.Namespace) -> int:
    with transaction(ctx) as session:
        created = api.create_campaign(
            session, args.name, status=args.status, owner_email=args.owner,
            timezone=args.timezone,
            starts_on=None if args.starts is None else views.parse_day(args.starts, "--starts"),
            ends_on=None if args.ends is None else views.parse_day(args.ends, "--ends"),
        ).id
    print(created)
    return 0


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    with transaction(ctx) as session:
        found = views.list_campaigns(session)
    _print(found, args.json, lambda: [
        "\t".join(str(c[k] or "-") for k in
                  ("id", "status", "name", "timezone", "starts_on", "ends_on", "owner_email"))
        for c in found
    ] or ["no campaigns"])
    return 0


def run_show(ctx: Context, args: argparse.Namespace) -> int:
    with transaction(ctx) as session:
        shown = views.show_campaign(session, args.campaign)

    def text() -> list[str]:
        dates = f"{shown['starts_on'] or 'open'} to {shown['ends_on'] or 'open'}"
        return [
            f"campaign {shown['id']}: {shown['name']} ({shown['status']})",
            f"owner: {shown['owner_email'] or 'none'}; zone: {shown['timezone']}; {dates}",
            f"upcoming posts: {len(shown['upcoming_items'])}",
            *(f"  {i['id']}\t{i['status']}\t{i['publish_at']}\t{i['platform']}\t"
              f"{i['account'] or '-'}\t{report.first_line(i['content'], 60)}"
              for i in shown["upcoming_items"]),
            f"open tasks: {len(shown['open_tasks'])}",
            *(f"  {t['id']}\t{t['status']}\t{t['type']}\t{t['due_at'] or 'no deadline'}\t"
              f"{t['title']}" for t in shown["open_tasks"]),
        ]

    _print(shown, args.json, text)
    return 0


def run_add_item(ctx: Context, args: argparse.Namespace) -> int:
    with transaction(ctx) as session:
        campaign = api.get_campaign(session, args.campaign)
        created = api.add_calendar_item(
            session, campaign.id, args.platform, args.content,
            views.parse_time(args.at, campaign.timezone, "--at"),
            account=args.account, media=args.media, alt_texts=args.alt).id
    print(created)
    return 0


def run_add_task(ctx: Context, args: argparse.Namespace) -> int:
    with transaction(ctx) as session:
        campaign = api.get_campaign(session, args.campaign)
        due = None if args.due is None else views.parse_time(args.due, campaign.timezone, "--due")
        created = api.add_task(session, campaign.id, args.title, task_type=args.task_type,
                               due_at=due).id
    print(created)
    return 0


def run_add_metric(ctx: Context, args: argparse.Namespace) -> int:
    with transaction(ctx) as session:
        campaign = api.get_campaign(session, args.campaign)
        at = None if args.at is None else views.parse_time(args.at, campaign.timezone, "--at")
        created = api.record_metric(session, campaign.id, args.platform,
                                    impressions=args.impressions, engagement=args.engagement,
                                    clicks=args.clicks, recorded_at=at).id
    print(created)
    return 0


def run_import(ctx: Context, args: argparse.Namespace) -> int:
    """Every refused row is named on stderr; one refusal and nothing is imported."""
    importer = IMPORTERS[args.kind]
    try:
        source = args.file.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise AOLError(f"cannot read {args.file}: {exc.strerror}") from None
    with source, transaction(ctx) as session:
        try:
            report = importer(session, args.campaign, source)
        except UnicodeDecodeError:
            raise AOLError(f"{args.file} is not UTF-8 text") from None
        except csv.Error as exc:
            raise AOLError(f"{args.file} is not CSV: {exc}") from None
        if report.refused:
            for line, reason in report.refused:
                print(f"{args.file}:{line}: {reason}", file=sys.stderr)
            total = len(report.added) + len(report.refused)
            raise AOLError(f"nothing imported: {len(report.refused)} of {total} row(s) "
                           "refused")
    print(f"imported {len(report.added)} {args.kind[:-1]}(s): "
          f"ids {', '.join(map(str, report.added)) or 'none'}")
    return 0


IMPORTERS = {"items": imports.import_items, "tasks": imports.import_tasks,
             "metrics": imports.import_metrics}


def run_done(ctx: Context, args: argparse.Namespace) -> int:
    with transaction(ctx) as session:
        api.set_task_status(session, args.task, TaskStatus.DONE, actor="aol campaigns done")
    return 0


def _print(data: Any, as_json: bool, lines: Callable[[], list[str]]) -> None:
    print(json.dumps(data, indent=2) if as_json else "\n".join(lines()))
