"""``aol schedules [--json]`` and ``aol schedules add|pause|resume|remove``."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from aol_core import scheduler
from aol_core.cli.actions import json_object
from aol_core.cli.common import Context, iso, print_json, print_table
from aol_core.schedules import CatchUp, Schedule
from aol_core.timeutil import parse_duration, utcnow


def duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(commands: Any) -> None:
    group = commands.add_parser("schedules", help="periodic actions: list, add, pause, remove")
    group.add_argument("--json", action="store_true")
    group.set_defaults(handler=run_list)
    sub = group.add_subparsers(dest="schedules_command", metavar="[SUBCOMMAND]")
    add = sub.add_parser("add", help="add an operator's schedule")
    add.add_argument("name", metavar="NAME")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help='a cron expression, e.g. "0 8 * * mon"')
    when.add_argument("--every", type=duration, metavar="DURATION", help="e.g. 30s, 15m, 1h")
    add.add_argument("action_type", metavar="TYPE")
    add.add_argument("--tz", default="UTC", metavar="ZONE",
                     help="IANA time zone the cron expression is read in (default UTC)")
    add.add_argument("--payload", type=json_object, default={}, metavar="JSON",
                     help="a JSON object; {slot} in its strings becomes the slot's time")
    add.add_argument("--catch-up", choices=[c.value for c in CatchUp], default="latest",
                     help="after downtime: run the latest missed slot (default), all, or skip")
    add.set_defaults(handler=run_add)
    for name, paused, text in (("pause", True, "stop enqueuing a schedule's slots"),
                               ("resume", False, "start again with the next slot")):
        command = sub.add_parser(name, help=text)
        command.add_argument("name", metavar="NAME")
        command.set_defaults(handler=run_pause, paused=paused)
    remove = sub.add_parser("remove", help="delete an operator's schedule")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(handler=run_remove)


def _when(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.ready_engine()
    now = utcnow()
    with engine.connect() as conn:
        listed = scheduler.statuses(conn, ctx.registry, now)
    if args.json:
        print_json([
            {"name": s.schedule.name, "source": s.schedule.source,
             "expression": s.schedule.expression, "timezone": s.schedule.timezone,
             "action_type": s.schedule.action_type, "catch_up": str(s.schedule.catch_up),
             "payload": dict(s.schedule.payload), "next_slot": iso(s.next_slot),
             "last_slot": iso(s.last_slot), "missed": s.missed, "paused": s.paused,
             "routable": s.routable, "last_error": s.last_error}
            for s in listed
        ])
        return 0
    print_table(
        ["NAME", "SOURCE", "EXPRESSION", "ZONE", "TYPE", "NEXT SLOT (UTC)", "LAST SLOT (UTC)",
         "MISSED", "PAUSED", "PROBLEM"],
        [[s.schedule.name, s.schedule.source, s.schedule.expression, s.schedule.timezone,
          s.schedule.action_type, _when(s.next_slot), _when(s.last_slot), s.missed,
          "yes" if s.paused else "no",
          "no plugin runs this type" if not s.routable else s.last_error or ""]
         for s in listed],
    )
    return 0


def run_add(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    schedule = Schedule(args.name, args.action_type, cron=args.cron, every=args.every,
                        timezone=args.tz, payload=args.payload, catch_up=args.catch_up,
                        source="operator")
    with ctx.sessions() as session, session.begin():
        first = scheduler.add_schedule(session, schedule, ctx.registry)
    print(f"schedule {schedule.name} added; next slot {_when(first)} UTC")
    if schedule.action_type not in ctx.registry.routes:
        print(f"warning: no plugin installed here runs {schedule.action_type}; "
              "a worker that does must run for the schedule to enqueue anything")
    return 0


def run_pause(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session, session.begin():
        scheduler.set_paused(session, args.name, args.paused, ctx.registry)
    print(f"schedule {args.name} {'paused' if args.paused else 'resumed'}")
    return 0


def run_remove(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session, session.begin():
        scheduler.remove_schedule(session, args.name, ctx.registry)
    print(f"schedule {args.name} removed")
    return 0
