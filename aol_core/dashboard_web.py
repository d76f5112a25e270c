"""The read-only dashboard of ``aol serve``: pages that answer HTML to a browser and JSON to
``Accept: application/json``, from the data of :mod:`aol_core.dashboard`.

Access: with neither ``AOL_SERVE_READ_TOKEN`` nor ``AOL_SERVE_WRITE_TOKEN`` set, the server
only binds to loopback (see :func:`aol_core.serve.require_safe_bind`) and every page is
open. With a token set, a page wants it as ``Authorization: Bearer TOKEN`` or a session
cookie from the login form; the cookie holds an HMAC of the token, never the token.
Pages are rendered with every value escaped, under a Content-Security-Policy that allows no
script; artifacts are served as text or images only, never as HTML.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from aol_core import dashboard
from aol_core.config import Settings
from aol_core.errors import ActionNotFound
from aol_core.models import Status
from aol_core.plugins import PluginRegistry
from aol_core.timeutil import parse_when

SESSION_COOKIE = "aol_session"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: artifacts shown in the browser; anything else is downloaded
INLINE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}pre{background:#f7f7f7;padding:8px;
white-space:pre-wrap}nav a{margin-right:1em}.bad{color:#b00}"""

Page = Callable[[Request], Awaitable[Response]]


def dashboard_routes(engine: Engine, registry: PluginRegistry,
                     settings: Settings) -> list[Route]:
    tokens = [t for t in (settings.serve_read_token, settings.serve_write_token) if t]

    def allowed(request: Request) -> bool:
        if not tokens:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and any(_same(given.strip(), t) for t in tokens):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return any(_same(cookie, _session(t)) for t in tokens)

    def guarded(page: Page) -> Page:
        async def answer(request: Request) -> Response:
            if not allowed(request):
                if _wants_json(request):
                    return JSONResponse({"error": "a token is needed (Authorization: Bearer "
                                         "TOKEN)"}, 401, headers={"WWW-Authenticate": "Bearer"})
                return RedirectResponse("/login", 303)
            try:
                response = await page(request)
            except ActionNotFound as exc:
                response = _answer(request, {"error": str(exc)}, "Not found",
                                   [f"<p class=bad>{escape(str(exc))}</p>"], 404)
            except ValueError as exc:
                response = _answer(request, {"error": str(exc)}, "Bad request",
                                   [f"<p class=bad>{escape(str(exc))}</p>"], 400)
            response.headers.update(SECURITY_HEADERS)
            return response
        return answer

    async def home(request: Request) -> Response:
        data = await run_in_threadpool(dashboard.overview, engine, registry)
        return _answer(request, data, "AOL", _overview_html(data))

    async def listing(request: Request) -> Response:
        wanted = _filter(request)
        rows = await run_in_threadpool(dashboard.list_actions, engine, wanted)
        return _answer(request, {"actions": rows}, "Actions", _listing_html(wanted, rows))

    async def one(request: Request) -> Response:
        data = await run_in_threadpool(dashboard.action_page, engine, registry,
                                       _id(request.path_params["action_id"]))
        return _answer(request, data, f"Action {data['id']}", _action_html(data))

    async def download(request: Request) -> Response:
        action_id, name = _id(request.path_params["action_id"]), request.path_params["name"]
        media_type, content = await run_in_threadpool(dashboard.artifact, engine, action_id,
                                                      name)
        if media_type in INLINE_IMAGES:
            return Response(content, media_type=media_type)
        shown = media_type.startswith("text/") or media_type == "application/json"
        disposition = "inline" if shown else f"attachment; filename*=UTF-8''{quote(name)}"
        return Response(content, media_type="text/plain; charset=utf-8" if shown
                        else "application/octet-stream",
                        headers={"Content-Disposition": disposition})

    async def login(request: Request) -> Response:
        if request.method == "POST":
            given = parse_qs((await request.body()).decode("utf-8", "replace")).get(
                "token", [""])[0]
            match = next((t for t in tokens if _same(given, t)), None)
            if match is not None:
                response: Response = RedirectResponse("/", 303)
                response.set_cookie(SESSION_COOKIE, _session(match), httponly=True,
                                    samesite="strict")
                return response
        wrong = request.method == "POST"
        response = HTMLResponse(_document("Log in", [
            "<p class=bad>That token is not valid.</p>" if wrong else "",
            "<form method=post action=/login><label>Token <input type=password name=token "
            "autofocus></label> <button>Log in</button></form>"]), 401 if wrong else 200)
        response.headers.update(SECURITY_HEADERS)
        return response

    return [
        Route("/", guarded(home)),
        Route("/actions", guarded(listing)),
        Route("/actions/{action_id}", guarded(one)),
        Route("/actions/{action_id}/artifacts/{name:path}", guarded(download)),
        Route("/login", login, methods=["GET", "POST"]),
    ]


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _session(token: str) -> str:
    return hmac.new(token.encode(), b"aol dashboard session", hashlib.sha256).hexdigest()


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _id(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"not an action id: {text!r}")
    return int(text)


def _filter(request: Request) -> dashboard.Filter:
    """The listing's filter from the query string; a bad value is a 400 naming it."""
    query = {k: v.strip() for k, v in request.query_params.items() if v.strip()}
    status = query.get("status", "").upper() or None
    if status is not None and status not in Status.__members__:
        raise ValueError(f"unknown status {status!r}; one of {', '.join(Status.__members__)}")
    limit = query.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= dashboard.LIST_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {dashboard.LIST_LIMIT}")
    times = {}
    for name in ("since", "until"):
        if name in query:
            try:
                times[name] = parse_when(query[name])
            except (ValueError, OverflowError) as exc:
                raise ValueError(f"{name}: {exc}") from None
    return dashboard.Filter(status=status, action_type=query.get("type"), key=query.get("key"),
                            text=query.get("text"), limit=int(limit), **times)


def _answer(request: Request, data: Any, title: str, body: Iterable[str],
            status: int = 200) -> Response:
    if _wants_json(request):
        return Response(json.dumps(data, default=_plain), status, media_type="application/json")
    return HTMLResponse(_document(title, body), status)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _document(title: str, body: Iterable[str]) -> str:
    return ("<!doctype html><html lang=en><meta charset=utf-8>"
            f"<title>{escape(title)}</title><style>{STYLE}</style>"
            "<nav><a href=/>Overview</a><a href=/actions>Actions</a>"
            "<a href=/metrics>Metrics</a><a href=/readyz>Readiness</a></nav>"
            f"<h1>{escape(title)}</h1>{''.join(body)}</html>")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, list | dict):
        return escape(json.dumps(value, default=_plain))
    return escape(str(value))


def _table(headers: list[str], rows: Iterable[Iterable[Any]], raw: int | None = None,
           table_id: str = "") -> str:
    """A table; column ``raw`` holds HTML made here (a link), every other cell is escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell if i == raw else _cell(cell)}</td>"
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table id={table_id or 't'}><tr>{head}</tr>{body}</table>"


def _overview_html(data: dict[str, Any]) -> list[str]:
    statuses = [s.value for s in Status]
    flags = [name for name, on in data["flags"].items() if on]
    hour = data["last_hour"]
    rate = "" if hour["failure_rate"] is None else f", {hour['failure_rate']:.1%} failed"
    return [
        "<p class=bad>Switches on: " + escape(", ".join(flags)) + "</p>" if flags else "",
        f"<p id=last-hour>Last hour: {hour['finished']} finished ({hour['per_minute']} a "
        f"minute){rate}.</p>",
        "<h2>Actions by status and type</h2><p>Unfinished statuses count what is stored now; "
        "finished ones, what finished in the last hour.</p>",
        _table(["Type", *statuses, "Oldest due waits (s)"],
               ([f"<a href='/actions?{escape(urlencode({'type': row['action_type']}))}'>"
                 f"{escape(row['action_type'])}</a>",
                 *(row[s] for s in statuses),
                 None if row["oldest_waiting_seconds"] is None
                 else round(row["oldest_waiting_seconds"])]
                for row in data["counts"]), raw=0, table_id="counts"),
        "<h2>Workers</h2>",
        _table(["Name", "Host", "Action types", "Last heartbeat", "Versions"],
               ([w["name"], w["host"], ", ".join(w["action_types"] or ()),
                 w["last_heartbeat"], w["versions"]] for w in data["workers"]),
               table_id="workers"),
        "<h2>Plugins</h2>",
        _table(["Plugin", "Status", "Action types", "Error"],
               ([p["plugin"], p["status"], ", ".join(p["action_types"]), p["error"]]
                for p in data["plugins"]), table_id="plugins"),
        "<h2>Schedules</h2>",
        _table(["Name", "Type", "Next slot", "Last slot", "Missed", "Paused"],
               ([s["name"], s["action_type"], s["next_slot"], s["last_slot"], s["missed"],
                 s["paused"]] for s in data["schedules"]), table_id="schedules"),
    ]


def _listing_html(wanted: dashboard.Filter, rows: list[dict[str, Any]]) -> list[str]:
    def field(name: str, label: str, value: Any) -> str:
        return (f"<label>{label} <input name={name} value='{_cell(value)}' size=12></label> ")

    return [
        "<form method=get action=/actions>",
        field("status", "Status", wanted.status), field("type", "Type", wanted.action_type),
        field("key", "Key", wanted.key), field("text", "Payload text", wanted.text),
        field("since", "Since", wanted.since and wanted.since.isoformat()),
        field("until", "Until", wanted.until and wanted.until.isoformat()),
        "<button>Filter</button></form>",
        _table(["ID", "Type", "Status", "Attempts", "Not before", "Created", "Last error"],
               ([f"<a href=/actions/{row['id']}>{row['id']}</a>", row["action_type"],
                 row["status"], f"{row['attempts']}/{row['max_attempts']}", row["not_before"],
                 row["created_at"], row["last_error"]] for row in rows),
               raw=0, table_id="actions"),
    ]


def _action_html(data: dict[str, Any]) -> list[str]:
    shown = ("action_type", "status", "priority", "attempts", "max_attempts",
             "idempotency_key", "proof_mode", "not_before", "created_at", "started_at",
             "finished_at", "lease_owner", "lease_expires_at", "last_error")
    artifact_links = [
        f"<a href='/actions/{data['id']}/artifacts/{escape(quote(a['name']))}'>"
        f"{escape(a['name'])}</a>" for a in data["artifacts"]]
    images = "".join(
        f"<p><img alt='{escape(a['name'])}' src='/actions/{data['id']}/artifacts/"
        f"{escape(quote(a['name']))}' style='max-width:40em'></p>"
        for a in data["artifacts"] if a["media_type"] in INLINE_IMAGES)
    return [
        "<h2>Why it is where it is</h2><ul id=explanation>"
        + "".join(f"<li>{escape(r['message'])}</li>" for r in data["explanation"]) + "</ul>",
        _table(["Field", "Value"], ([name, data[name]] for name in shown), table_id="fields"),
        "<h2>Payload</h2><pre id=payload>"
        + escape(json.dumps(data["payload"], indent=2, default=_plain)) + "</pre>",
        "<h2>Result</h2><pre id=result>"
        + escape(json.dumps(data["result"], indent=2, default=_plain)) + "</pre>",
        "<h2>Log</h2>",
        _table(["Time", "Attempt", "Level", "Worker", "Message"],
               ([line["ts"], line["attempt"], line["level"], line["worker"], line["message"]]
                for line in data["log"]), table_id="log"),
        "<h2>Artifacts</h2>",
        _table(["Name", "Media type", "Size", "SHA-256"],
               ([link, a["media_type"], a["size"], a["sha256"]]
                for link, a in zip(artifact_links, data["artifacts"], strict=True)),
               raw=0, table_id="artifacts"),
        images,
    ]
