"""``aol control status|pause|resume|kill|revive|proof on|off``: the global switches."""

from __future__ import annotations

import argparse
from typing import Any

from aol_core.cli.common import Context, print_json
from aol_core.control import MEANINGS, read_flags, set_flag

CHANGES = {
    "pause": ("paused", True), "resume": ("paused", False),
    "kill": ("killed", True), "revive": ("killed", False),
}


def register(commands: Any) -> None:
    group = commands.add_parser("control", help="pause, kill and proof-mode switches")
    sub = group.add_subparsers(dest="control_command", metavar="SUBCOMMAND", required=True)
    status = sub.add_parser("status", help="show the switches and what they mean")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=run_status)
    for word, (flag, value) in CHANGES.items():
        change = sub.add_parser(word, help=f"set {flag} to {str(value).lower()}")
        change.set_defaults(handler=run_set, flag=flag, value=value)
    proof = sub.add_parser("proof", help="global proof mode on or off")
    proof.add_argument("state", choices=["on", "off"])
    proof.set_defaults(handler=run_proof)


def run_status(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.ready_engine().connect() as conn:
        flags = read_flags(conn)
    values = {"paused": flags.paused, "killed": flags.killed, "proof_mode": flags.proof_mode}
    if args.json:
        print_json(values)
        return 0
    for name, value in values.items():
        print(f"{name:10} {'ON ' if value else 'off'}  {MEANINGS[name]}")
    print("proof mode applies to an action when its own flag, the worker's --proof or the "
          "global flag says so")
    return 0


def run_set(ctx: Context, args: argparse.Namespace) -> int:
    with ctx.ready_engine().begin() as conn:
        set_flag(conn, args.flag, args.value)
    print(f"{args.flag} is now {'ON' if args.value else 'off'}: "
          f"{MEANINGS[args.flag] if args.value else 'cleared'}")
    return 0


def run_proof(ctx: Context, args: argparse.Namespace) -> int:
    args.flag, args.value = "proof_mode", args.state == "on"
    return run_set(ctx, args)
