"""``aol limits [--json]`` and ``aol limits set|clear``: operators' rate limits and caps.

Overrides live in the database (``aol_flow_limits``), so they apply to every worker on every
machine, each from its next read of them (at most one poll interval later), without a
restart or a code change.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from aol_core import flow, limits
from aol_core.cli.common import Context, print_json, print_table
from aol_core.timeutil import parse_duration


def rate(text: str) -> tuple[int, timedelta]:
    """``N/DURATION``, e.g. ``10/1m``."""
    count, _, period = text.partition("/")
    try:
        parsed = int(count), parse_duration(period)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not N/DURATION, e.g. 10/1m or 100/1h") from None
    if parsed[0] < 1:
        raise argparse.ArgumentTypeError("a rate needs at least 1 start per period")
    if parsed[0] > limits.INT32_MAX:
        raise argparse.ArgumentTypeError(f"a rate allows at most {limits.INT32_MAX} starts "
                                         "per period")
    if parsed[1] <= timedelta(0):
        raise argparse.ArgumentTypeError("a rate needs a period longer than 0")
    return parsed


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= limits.INT32_MAX:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to {limits.INT32_MAX}")
    return value


def register(commands: Any) -> None:
    group = commands.add_parser(
        "limits", help="rate limits and concurrency caps: list, override, clear")
    group.add_argument("--json", action="store_true")
    group.set_defaults(handler=run_list)
    sub = group.add_subparsers(dest="limits_command", metavar="[SUBCOMMAND]")
    set_ = sub.add_parser(
        "set", help="replace a type's declared limits, for every worker, until cleared")
    set_.add_argument("action_type", metavar="TYPE")
    set_.add_argument("--rate", type=rate, metavar="N/PERIOD",
                      help="at most N starts in any PERIOD (e.g. 10/1m)")
    set_.add_argument("--concurrency", type=positive, metavar="N",
                      help="at most N running at once")
    set_.add_argument("--key", metavar="FIELD",
                      help="apply the limits per value of this payload field")
    set_.set_defaults(handler=run_set)
    clear = sub.add_parser("clear", help="go back to the limits the type's plugin declares")
    clear.add_argument("action_type", metavar="TYPE")
    clear.set_defaults(handler=run_clear)


def _rate(limits: flow.Limits) -> str:
    r = limits.rate
    return "" if r is None else f"{r.count}/{r.period.total_seconds():g}s"


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.ready_engine()
    specs = {name: route.spec for name, route in ctx.registry.routes.items()}
    with engine.connect() as conn:
        rows = flow.listing(conn, specs)
    if args.json:
        print_json([
            {"action_type": row.action_type, "source": _source(row),
             "rate": None if row.limits.rate is None else {
                 "count": row.limits.rate.count,
                 "period_seconds": row.limits.rate.period.total_seconds(),
                 "key": row.limits.rate.key},
             "concurrency": None if row.limits.cap is None else {
                 "count": row.limits.cap.count, "key": row.limits.cap.key}}
            for row in rows])
        return 0
    print_table(
        ["TYPE", "SOURCE", "RATE", "RATE KEY", "CONCURRENCY", "CONCURRENCY KEY"],
        [[row.action_type, _source(row), _rate(row.limits),
          (row.limits.rate.key or "") if row.limits.rate else "",
          row.limits.cap.count if row.limits.cap else "",
          (row.limits.cap.key or "") if row.limits.cap else ""] for row in rows])
    return 0


def _source(row: flow.LimitRow) -> str:
    return "operator" if row.overridden else "plugin"


def run_set(ctx: Context, args: argparse.Namespace) -> int:
    if args.rate is None and args.concurrency is None:
        raise SystemExit("aol limits set: give --rate, --concurrency or both "
                         "(aol limits clear goes back to the declared limits)")
    engine = ctx.ready_engine()
    with engine.begin() as conn:
        flow.set_override(conn, args.action_type, args.rate, args.concurrency, args.key)
    print(f"limits of {args.action_type} set for every worker (within one poll interval)")
    if args.action_type not in ctx.registry.routes:
        print(f"warning: no plugin installed here runs {args.action_type}")
    return 0


def run_clear(ctx: Context, args: argparse.Namespace) -> int:
    engine = ctx.ready_engine()
    with engine.begin() as conn:
        cleared = flow.clear_override(conn, args.action_type)
    print(f"limits of {args.action_type} back to the declared ones" if cleared
          else f"{args.action_type} had no override")
    return 0
