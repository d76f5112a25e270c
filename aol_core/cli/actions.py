"""``aol enqueue`` and ``aol actions list|show|retry|cancel|release|resolve|artifact``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from aol_core import limits, queue
from aol_core.cli import action_types
from aol_core.cli.common import (
    Context,
    action_dict,
    action_id,
    excerpt,
    int32,
    iso,
    positive_int,
    print_json,
    print_table,
    text_arg,
)
from aol_core.errors import AOLError, InvalidPayload
from aol_core.limits import Undecodable
from aol_core.models import Action, Artifact, ExecutionLog, Status
from aol_core.timeutil import parse_when


def json_object(text: str) -> dict[str, Any]:
    try:
        return limits.decode_object(text, "the payload")
    except InvalidPayload as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def when(text: str) -> datetime:
    try:
        return parse_when(text)
    except (ValueError, OverflowError) as exc:
        raise argparse.ArgumentTypeError(excerpt(str(exc), 200)) from None


def status_word(text: str) -> str:
    word = text.upper()
    if word not in Status.__members__:
        raise argparse.ArgumentTypeError(
            f"unknown status {text!r}; one of {', '.join(Status.__members__)}"
        )
    return word


def register(commands: Any) -> None:
    enqueue = commands.add_parser("enqueue", help="add an action to the queue")
    enqueue.add_argument("action_type", type=text_arg, metavar="TYPE")
    payload = enqueue.add_mutually_exclusive_group()
    payload.add_argument("payload", nargs="?", type=json_object, default={}, metavar="JSON",
                         help="the payload, a JSON object (default {})")
    payload.add_argument("--payload", dest="payload", type=json_object, metavar="JSON",
                         help="the same, as an option")
    enqueue.add_argument("--key", type=text_arg, metavar="K",
                         help="idempotency key (default: a new uuid)")
    enqueue.add_argument("--not-before", type=when, metavar="WHEN",
                         help="ISO 8601 with offset, or +30s, +5m, +1h, +2d")
    enqueue.add_argument("--priority", type=int32, default=0, help="higher runs first (default 0)")
    enqueue.add_argument("--max-attempts", type=positive_int, metavar="N")
    enqueue.add_argument("--proof", action="store_true", help="always run in proof mode")
    enqueue.add_argument("--force", action="store_true",
                         help="accept an action type no loaded plugin declares, unvalidated")
    enqueue.add_argument("--json", action="store_true")
    enqueue.set_defaults(handler=run_enqueue)

    group = commands.add_parser("actions", help="inspect and steer actions")
    sub = group.add_subparsers(dest="actions_command", metavar="SUBCOMMAND", required=True)
    listing = sub.add_parser("list", help="actions, newest first")
    listing.add_argument("--status", type=status_word)
    listing.add_argument("--type", dest="action_type", type=text_arg, metavar="T")
    listing.add_argument("--limit", type=positive_int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=run_list)
    show = sub.add_parser("show", help="one action with its log and artifacts")
    show.add_argument("action_id", type=action_id, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=run_show)
    retry = sub.add_parser("retry", help="run a FAILED, DLQ or CANCELLED action again")
    retry.add_argument("action_id", type=action_id, metavar="ID")
    retry.set_defaults(handler=run_retry)
    cancel = sub.add_parser(
        "cancel", help="cancel a PENDING, RETRY or RUNNING action (a running attempt's "
        "outcome is refused and its writes roll back)")
    cancel.add_argument("action_id", type=action_id, metavar="ID")
    cancel.set_defaults(handler=run_cancel)
    release = sub.add_parser("release", help="make a HELD action due again")
    release.add_argument("action_id", type=action_id, metavar="ID")
    release.set_defaults(handler=run_release)
    resolve = sub.add_parser("resolve", help="record what became of a HELD action")
    resolve.add_argument("action_id", type=action_id, metavar="ID")
    finding = resolve.add_mutually_exclusive_group(required=True)
    finding.add_argument("--success", dest="succeeded", action="store_true",
                         help="it did what it should (e.g. the post is online)")
    finding.add_argument("--failed", dest="succeeded", action="store_false",
                         help="it did not, and must not be retried")
    resolve.add_argument("--note", metavar="TEXT", help="what was found, kept in its log")
    resolve.set_defaults(handler=run_resolve)
    artifact = sub.add_parser("artifact", help="print an artifact's content")
    artifact.add_argument("action_id", type=action_id, metavar="ID")
    artifact.add_argument("name", type=text_arg, metavar="NAME")
    artifact.set_defaults(handler=run_artifact)
    action_types.register(sub)


def run_enqueue(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session, session.begin():
        done = queue.enqueue(
            session, args.action_type, args.payload, idempotency_key=args.key,
            not_before=args.not_before, priority=args.priority, max_attempts=args.max_attempts,
            proof_mode=args.proof, force=args.force,
        )
    if args.json:
        print_json({"id": done.id, "status": done.status, "created": done.created,
                    "idempotency_key": done.idempotency_key})
    elif done.created:
        print(f"enqueued action {done.id} ({args.action_type}), key {done.idempotency_key}")
    else:
        print(f"action {done.id} already has key {done.idempotency_key} ({done.status}); "
              "nothing new enqueued")
    return 0


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    statement = select(Action).order_by(Action.id.desc()).limit(args.limit)
    if args.status:
        statement = statement.where(Action.status == args.status)
    if args.action_type:
        statement = statement.where(Action.action_type == args.action_type)
    with ctx.sessions() as session:
        rows = list(session.scalars(statement))
    if args.json:
        print_json([action_dict(a) for a in rows])
        return 0
    print_table(
        ["ID", "TYPE", "STATUS", "ATTEMPTS", "NOT BEFORE", "LAST ERROR"],
        [[a.id, a.action_type, a.status, f"{a.attempts}/{a.max_attempts}",
          f"{a.not_before:%Y-%m-%d %H:%M:%S}", excerpt(a.last_error)] for a in rows],
    )
    return 0


def run_show(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session:
        action = queue.load_action(session, args.action_id)
        logs = list(session.scalars(select(ExecutionLog).where(
            ExecutionLog.action_id == action.id).order_by(ExecutionLog.id)))
        artifacts = list(session.execute(
            select(Artifact.name, Artifact.media_type, Artifact.sha256, Artifact.created_at,
                   func.length(Artifact.content).label("size"))
            .where(Artifact.action_id == action.id).order_by(Artifact.name)))
    log_rows = [{"attempt": e.attempt, "ts": iso(e.ts), "level": e.level, "message": e.message,
                 "worker": e.worker, "artifact_ref": e.artifact_ref,
                 "artifact_sha256": e.artifact_sha256} for e in logs]
    artifact_rows = [{"name": a.name, "uri": f"aol://artifacts/{action.id}/{a.name}",
                      "media_type": a.media_type, "sha256": a.sha256, "size": a.size,
                      "created_at": iso(a.created_at)} for a in artifacts]
    if args.json:
        print_json({**action_dict(action), "logs": log_rows, "artifacts": artifact_rows})
        return 0
    for key, value in action_dict(action).items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        if isinstance(value, Undecodable):
            shown = f"{value}  (stored text that cannot be decoded)"
        print(f"{key:17} {'' if shown is None else shown}")
    print("\nlog:")
    for e in log_rows:
        print(f"  [{e['ts']}] attempt {e['attempt']} {e['level']:7} {e['message']}"
              + (f" -> {e['artifact_ref']}" if e["artifact_ref"] else ""))
    print("\nartifacts:" if artifact_rows else "\nartifacts: none")
    for a in artifact_rows:
        print(f"  {a['uri']}  {a['media_type']}  {a['size']} bytes  sha256 {a['sha256']}")
    return 0


def run_retry(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session, session.begin():
        action = queue.retry_action(session, args.action_id)
        print(f"action {action.id} is {action.status} again, due now "
              f"(attempt {action.attempts + 1} of {action.max_attempts})")
    return 0


def run_cancel(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session, session.begin():
        action = queue.cancel_action(session, args.action_id)
        print(f"action {action.id} cancelled")
    return 0


def run_release(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session, session.begin():
        action = queue.release_held(session, args.action_id)
        print(f"action {action.id} released: {action.status}, due now "
              f"(attempt {action.attempts + 1} of {action.max_attempts})")
    return 0


def run_resolve(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session, session.begin():
        action = queue.resolve_held(session, args.action_id, args.succeeded, args.note)
        print(f"action {action.id} resolved as {action.status}")
    return 0


def run_artifact(ctx: Context, args: argparse.Namespace) -> int:
    ctx.ready_engine()
    with ctx.sessions() as session:
        queue.load_action(session, args.action_id)
        content = session.scalar(select(Artifact.content).where(
            Artifact.action_id == args.action_id, Artifact.name == args.name))
    if content is None:
        raise AOLError(f"action {args.action_id} has no artifact named {args.name!r}")
    sys.stdout.buffer.write(content)
    sys.stdout.flush()
    return 0
