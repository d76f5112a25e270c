"""``aol explain ID``: why an action is where it is."""

from __future__ import annotations

import argparse
from typing import Any

from aol_core.cli.common import Context, action_id, iso, print_json
from aol_core.explain import explain


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "explain", help="why an action is where it is (what holds it, until when)")
    parser.add_argument("action_id", type=action_id, metavar="ID")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run_explain)


def run_explain(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.ready_engine().connect() as conn:
        found = explain(conn, ctx.registry, args.action_id)
    if args.json:
        print_json({
            "id": found.action_id, "action_type": found.action_type, "status": found.status,
            "attempts": found.attempts, "max_attempts": found.max_attempts,
            "not_before": iso(found.not_before), "last_error": found.last_error,
            "reasons": [{"code": r.code, "message": r.message, "until": iso(r.until)}
                        for r in found.reasons],
            "log": [{**line, "ts": iso(line["ts"])} for line in found.log],
        })
        return 0
    print(f"action {found.action_id} ({found.action_type}) is {found.status}, attempt "
          f"{found.attempts} of {found.max_attempts}")
    for reason in found.reasons:
        print(f"- {reason.message}")
    if found.last_error:
        print(f"last error: {found.last_error}")
    if found.log:
        print("log (newest last):")
    for line in found.log:
        print(f"  [{line['ts']:%Y-%m-%d %H:%M:%S}] attempt {line['attempt']} "
              f"{line['level']:7} {line['message']}")
    return 0
