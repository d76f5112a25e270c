"""``aol serve``: AOL's HTTP endpoints for orchestrators, monitoring and people.

* ``/healthz`` — liveness: the process serves (200, always).
* ``/readyz`` — readiness: the checks of ``aol health``; 200, or 503 with the failed checks.
* ``/metrics`` — the queue's gauges (:mod:`aol_core.metrics`) in the Prometheus text format.
* ``/``, ``/actions``, ``/actions/ID`` — the read-only dashboard (:mod:`aol_core.dashboard_web`).

Starlette (the ASGI toolkit) answers, uvicorn (a production ASGI server) serves; both are
in the optional extra ``aol-core[serve]`` with ``prometheus_client``, the official client
library, so a worker that serves nothing does not install them. The three probes show no
payloads and need no token unless ``AOL_SERVE_PROBES_TOKEN`` is set; then they want it as
``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aol_core.config import Settings
from aol_core.dashboard_web import dashboard_routes
from aol_core.errors import ConfigError
from aol_core.health import HealthReport, check_health
from aol_core.metrics import queue_registry
from aol_core.plugins import PluginRegistry


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_safe_bind(host: str, settings: Settings) -> None:
    """Refuse to serve beyond this machine while no operator token guards the server."""
    if is_loopback(host) or settings.serve_read_token or settings.serve_write_token:
        return
    raise ConfigError(
        f"refusing to serve on {host} without a token: set AOL_SERVE_READ_TOKEN or "
        "AOL_SERVE_WRITE_TOKEN, or bind to a loopback address such as 127.0.0.1")


def probes(readiness: Callable[[], HealthReport] | None, metrics: CollectorRegistry,
           probes_token: str | None) -> list[Route]:
    """The routes of ``/healthz``, ``/metrics`` and, given ``readiness``, ``/readyz``."""

    def guarded(endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            if probes_token is not None and not _bearer_is(request, probes_token):
                return JSONResponse({"error": "this endpoint needs AOL_SERVE_PROBES_TOKEN as "
                                     "Authorization: Bearer TOKEN"}, 401,
                                    headers={"WWW-Authenticate": "Bearer"})
            return endpoint(request)
        return answer

    def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def metrics_text(request: Request) -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/healthz", guarded(healthz)), Route("/metrics", guarded(metrics_text))]
    if readiness is not None:
        check = readiness

        def readyz(request: Request) -> Response:
            report = check()
            failed = [asdict(c) for c in report.checks if not c.ok]
            return JSONResponse({"ready": report.healthy, "failed": failed},
                                200 if report.healthy else 503)

        routes.append(Route("/readyz", guarded(readyz)))
    return routes


def server_app(engine: Engine, registry: PluginRegistry, settings: Settings) -> Starlette:
    """The application ``aol serve`` runs."""
    return Starlette(routes=[
        *probes(lambda: check_health(engine, registry, settings), queue_registry(engine),
                settings.serve_probes_token),
        *dashboard_routes(engine, registry, settings),
    ])


class HttpServer:
    """An ASGI application served by uvicorn on a socket bound and listening up front, so the
    port is known (and a taken port is an error) before serving starts."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
            self.socket.listen(128)  # from now on clients wait in the backlog, not refused
        except OSError as exc:
            self.socket.close()
            raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
        self.host, self.port = host, self.socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off"))

    @property
    def url(self) -> str:
        return f"http://{f'[{self.host}]' if ':' in self.host else self.host}:{self.port}"

    def run(self) -> None:
        """Serve until stopped (SIGINT or SIGTERM in the main thread, else :meth:`stop`)."""
        self.server.run(sockets=[self.socket])

    def stop(self) -> None:
        self.server.should_exit = True


def _bearer_is(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode())
