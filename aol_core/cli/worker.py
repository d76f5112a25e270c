"""``aol worker``: run actions until stopped; ``aol demo``: a worked example on SQLite."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

from aol_core import embed, queue, schema
from aol_core.cli.common import (
    Context,
    excerpt,
    non_negative_float,
    positive_float,
    positive_int,
    print_table,
    text_arg,
    whole_number,
)
from aol_core.cli.serve import bind_address
from aol_core.config import Settings
from aol_core.db import create_engine, require_existing_database, session_factory
from aol_core.errors import AOLError
from aol_core.models import Action, Artifact
from aol_core.plugins import installed_catalog
from aol_core.worker import Worker, WorkerOptions

#: runner threads a worker may start (each holds a database connection)
MAX_CONCURRENCY = 256


def register(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run actions until stopped")
    worker.add_argument("--concurrency", type=whole_number(1, MAX_CONCURRENCY), default=1,
                        metavar="N",
                        help="actions run at once, one thread and session each (default 1)")
    worker.add_argument("--burst", action="store_true",
                        help="exit when nothing is due, or the queue is paused, or no plugin "
                        "declares an action type")
    worker.add_argument("--proof", action="store_true", help="run every action in proof mode")
    worker.add_argument("--lease-seconds", type=positive_float, metavar="S")
    worker.add_argument("--batch-size", type=positive_int, metavar="N")
    worker.add_argument("--poll-interval", type=positive_float, metavar="S")
    worker.add_argument("--grace-seconds", type=non_negative_float, metavar="S")
    worker.add_argument("--name", type=text_arg, help="this worker's name (default host:pid)")
    worker.add_argument("--allow-broken-plugins", action="store_true",
                        help="run the plugins that load; report the worker as degraded")
    worker.add_argument("--http", type=bind_address, metavar="HOST:PORT",
                        help="serve this worker's /healthz and /metrics there "
                        "(aol-core[serve]; port 0: any free port)")
    worker.set_defaults(handler=run_worker)

    demo = commands.add_parser(
        "demo", help="run the installed plugins' example actions on a fresh SQLite database"
    )
    demo.add_argument("--dir", type=directory_arg, default=Path("aol-demo"),
                      help="where the demo database goes (default ./aol-demo)")
    demo.set_defaults(handler=run_demo)


def directory_arg(text: str) -> Path:
    """A directory's path, which must be UTF-8: the demo prints it and puts it in a URL."""
    return Path(text_arg(text))


def run_worker(ctx: Context, args: argparse.Namespace) -> int:
    settings = ctx.settings.with_overrides(
        lease_seconds=args.lease_seconds, batch_size=args.batch_size,
        poll_interval=args.poll_interval, grace_seconds=args.grace_seconds,
    )
    require_existing_database(settings.database_url)
    # One connection per runner thread, plus the claim loop, the heartbeat and a spare.
    engine = create_engine(settings.database_url, pool_size=args.concurrency + 3,
                           max_overflow=2)
    try:
        return embed.run_worker(
            engine, burst=args.burst, proof_mode=args.proof, concurrency=args.concurrency,
            name=args.name, settings=settings, registry=ctx.registry,
            allow_broken_plugins=args.allow_broken_plugins, handle_signals=True,
            http=args.http,
        )
    finally:
        engine.dispose()


def run_demo(ctx: Context, args: argparse.Namespace) -> int:
    registry = installed_catalog()
    if not registry.routes:
        raise AOLError("no action plugins are installed; pip install plugins/aol-social first")
    database = args.dir / "demo.db"
    try:
        args.dir.mkdir(parents=True, exist_ok=True)
        for stale in args.dir.glob("demo.db*"):
            stale.unlink()
    except OSError as exc:
        raise AOLError(f"cannot use {str(args.dir)!r} for the demo database: "
                       f"{exc.strerror or exc}") from None
    url = f"sqlite:///{database}"
    engine = create_engine(url)
    schema.upgrade(engine, registry)
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        examples = registry.example_actions(session)
        for action_type, payload in examples:
            queue.enqueue(session, action_type, dict(payload), proof_mode=True)
    print(f"demo database: {database}")
    contributors = {registry.routes[t].plugin.distribution for t, _ in examples
                    if t in registry.routes}
    print(f"enqueued {len(examples)} example action(s) from "
          f"{', '.join(sorted(contributors)) or 'no plugin'}; "
          "running a worker until the queue is empty (proof mode: nothing leaves this machine)\n",
          flush=True)
    settings = Settings(database_url=url, retry_base_seconds=0.2, poll_interval=0.2)
    logging.getLogger("aol.worker").setLevel(logging.DEBUG)  # a line per action, to watch
    Worker(engine, registry, settings,
           WorkerOptions(name="demo-worker", concurrency=2, burst=True)).run()
    with sessions() as session:
        rows = list(session.query(Action).order_by(Action.id))
        artifacts = list(session.query(Artifact.action_id, Artifact.name, Artifact.media_type)
                         .order_by(Artifact.action_id, Artifact.name))
    print()
    print_table(["ID", "TYPE", "STATUS", "ATTEMPTS", "RESULT / ERROR"],
                [[a.id, a.action_type, a.status, a.attempts,
                  excerpt(a.last_error) or excerpt(json.dumps(a.result), 70)] for a in rows])
    aol = f"{_this_command()} --db {url}"
    if artifacts:  # what proof mode recorded: the requests, the e-mail, the report
        print("\nwhat the actions recorded (proof artifacts):\n")
        print_table(["ID", "ARTIFACT", "MEDIA TYPE"], [list(a) for a in artifacts])
        # a page to open in a browser if there is one (the campaign plugin's weekly report)
        shown = next((a for a in artifacts if a.media_type == "text/html"), artifacts[0])
        suffix = Path(shown.name).suffix
        print(f"\nsave one to open it: {aol} actions artifact {shown.action_id} {shown.name}"
              f" > demo-{shown.action_id}{suffix}")
    if rows:
        print(f"look closer: {aol} actions show {rows[0].id}")
    engine.dispose()
    return 0


def _this_command() -> str:
    """How to run ``aol`` again as it was run now: a venv's ``aol`` that is not on PATH is
    named by its path (``.venv/bin/aol``), ``python -m aol_core.cli`` as such."""
    invoked = Path(sys.argv[0])
    if invoked.name != "aol":
        return f"{Path(sys.executable).name} -m aol_core.cli"
    return "aol" if shutil.which("aol") == str(invoked.resolve()) else str(invoked)
