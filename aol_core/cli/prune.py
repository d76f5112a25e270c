"""``aol prune``: delete finished actions older than the retention, with their logs."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from aol_core import limits, queue
from aol_core.cli.common import Context
from aol_core.timeutil import parse_duration, utcnow


def duration(text: str) -> timedelta:
    try:
        value = parse_duration(text)
    except (ValueError, OverflowError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value.total_seconds() > limits.MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {limits.MAX_SECONDS}s, not {text}")
    return value


def register(commands: Any) -> None:
    prune = commands.add_parser(
        "prune", help="delete finished actions older than the retention (workers do it hourly)"
    )
    prune.add_argument("--older-than", type=duration, metavar="DURATION",
                       help="e.g. 12h, 7d (default: $AOL_RETENTION, 7d)")
    prune.add_argument("--include-failed", action="store_true",
                       help="FAILED and DLQ too (kept by default, for operators to inspect)")
    prune.set_defaults(handler=run_prune)


def run_prune(ctx: Context, args: argparse.Namespace) -> int:
    age = args.older_than if args.older_than is not None else ctx.settings.retention
    deleted = queue.prune(ctx.ready_engine(), utcnow() - age, include_failed=args.include_failed)
    print(f"pruned {deleted} finished action(s) older than {age}")
    return 0
