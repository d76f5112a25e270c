"""``aol serve [--bind HOST:PORT]``: the HTTP endpoints (needs ``aol-core[serve]``)."""

from __future__ import annotations

import argparse
from typing import Any

from aol_core.cli.common import Context
from aol_core.errors import AOLError

DEFAULT_BIND = "127.0.0.1:8080"


def bind_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT such as {DEFAULT_BIND}, not {text!r}")
    return host, int(port)


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="the dashboard, /healthz, /readyz and /metrics over HTTP (aol-core[serve])")
    serve.add_argument("--bind", type=bind_address, default=bind_address(DEFAULT_BIND),
                       metavar="HOST:PORT", help=f"where to listen (default {DEFAULT_BIND}; "
                       "port 0: any free port)")
    serve.set_defaults(handler=run_serve)


def run_serve(ctx: Context, args: argparse.Namespace) -> int:
    try:
        from aol_core import serve
    except ImportError as exc:
        raise AOLError(f"aol serve needs the serve extra ({exc.name} is missing): "
                       "pip install 'aol-core[serve]'") from None
    host, port = args.bind
    serve.require_safe_bind(host, ctx.settings)
    engine = ctx.existing_engine()
    server = serve.HttpServer(serve.server_app(engine, ctx.registry, ctx.settings), host, port)
    print(f"aol serve: listening on {server.url} (the dashboard; /healthz, /readyz, /metrics)",
          flush=True)
    server.run()
    return 0
