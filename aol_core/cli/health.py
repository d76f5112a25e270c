"""``aol health``: exit 0 when healthy, 1 naming each failed check."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from aol_core.cli.common import Context, print_json
from aol_core.health import check_health


def register(commands: Any) -> None:
    health = commands.add_parser("health", help="is the queue being worked? (exit 1 if not)")
    health.add_argument("--json", action="store_true")
    health.set_defaults(handler=run_health)


def run_health(ctx: Context, args: argparse.Namespace) -> int:
    report = check_health(ctx.existing_engine(), ctx.registry, ctx.settings)
    if args.json:
        print_json({"healthy": report.healthy, "database": report.database,
                    "checks": [asdict(c) for c in report.checks], "workers": report.workers,
                    "counts": report.counts, "estimated_counts": report.estimated,
                    "flags": report.flags})
    else:
        print(f"database: {report.database}")
        for check in report.checks:
            print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if report.counts:
            print("actions: " + ", ".join(
                f"{k} {'~' if k in report.estimated else ''}{v}" for k, v in report.counts.items()))
        if any(report.flags.values()):
            print("switches on: " + ", ".join(k for k, v in report.flags.items() if v))
        print("healthy" if report.healthy else "UNHEALTHY")
    return 0 if report.healthy else 1
