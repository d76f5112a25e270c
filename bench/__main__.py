"""``python -m bench``: run AOL's benchmarks on fresh databases and print the results.

Needs the bench plugin (``pip install -e bench/plugin``) and, for PostgreSQL, a server whose
admin URL (``--pg-admin-url``, default ``postgresql://postgres@127.0.0.1:5432/test``) may
create and drop the database ``aol_bench_<pid>``. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

from bench import peers, scenarios
from bench.databases import DEFAULT_PG_ADMIN_URL, KINDS, Target
from bench.report import Row, as_json, describe, machine, render
from bench.scenarios import FULL, QUICK, SCENARIOS, Plan


def _names(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(allowed)}")
        return names

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark AOL against a raw-SQL floor.",
        epilog="scenarios: " + "; ".join(f"{n}: {d}" for n, (_f, d) in SCENARIOS.items()))
    parser.add_argument("--quick", action="store_true",
                        help="sizes ~20x smaller and a 5 s idle window (a few minutes in all)")
    parser.add_argument("--runs", type=int, default=3, metavar="N",
                        help="runs of each scenario on each database (default 3)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON on stdout (progress stays on stderr)")
    parser.add_argument("--databases", type=_names(KINDS), default=KINDS, metavar="LIST",
                        help="comma-separated: sqlite,postgresql (default both)")
    parser.add_argument("--scenarios", type=_names(tuple(SCENARIOS)), default=tuple(SCENARIOS),
                        metavar="LIST", help=f"comma-separated, default all: {','.join(SCENARIOS)}")
    parser.add_argument("--peers", action="store_true",
                        help="instead of the scenarios: huey (SQLite), pgqueuer and procrastinate "
                        "drain the same no-op work beside AOL (pip install -e "
                        "'bench/plugin[peers]')")
    parser.add_argument("--pg-admin-url", default=os.environ.get("AOL_BENCH_PG_URL",
                                                                 DEFAULT_PG_ADMIN_URL),
                        help="PostgreSQL database to connect to for CREATE/DROP DATABASE "
                        "aol_bench_<pid> (default $AOL_BENCH_PG_URL, else %(default)s)")
    return parser


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(plan: Plan, targets: dict[str, Target], runs: int) -> tuple[list[Row], list[str]]:
    rows: dict[tuple[str, str], Row] = {}
    errors: list[str] = []
    done: set[scenarios.Scenario] = set()
    for name in plan.scenarios:
        function = SCENARIOS[name][0]
        if function in done:  # latency and idle-cpu are one run of idle workers
            continue
        done.add(function)
        for kind, target in targets.items():
            for attempt in range(1, runs + 1):
                started = time.monotonic()
                progress(f"[{kind}] {name} run {attempt}/{runs} ...")
                try:
                    samples = function(target, plan)
                except Exception as exc:
                    errors.append(f"{kind} {name} run {attempt}: {type(exc).__name__}: {exc}")
                    progress(f"  failed: {errors[-1]}")
                    break
                for s in samples:
                    row = rows.setdefault((kind, s.label), Row(
                        kind, name, s.label, s.unit, higher_is_better=s.higher_is_better))
                    row.values.append(s.value)
                    if s.floor is not None:
                        row.floor.append(s.floor)
                progress(f"  {time.monotonic() - started:.1f} s: " + "; ".join(
                    f"{s.label} {s.value:,.2f} {s.unit}" for s in samples))
    ordered = sorted(rows.values(), key=lambda r: KINDS.index(r.database))
    _note_slowdown(ordered, plan)
    return ordered, errors


def _note_slowdown(rows: list[Row], plan: Plan) -> None:
    sizes = plan.sizes
    empty = {r.database: r for r in rows if r.label == scenarios.drain_label(sizes.drain, 1)}
    for row in rows:
        if row.label == scenarios.history_label(sizes.drain, sizes.history) and (
                row.database in empty):
            slowdown = 1 - row.median / empty[row.database].median
            row.note = f"{100 * slowdown:+.1f}% slowdown vs empty table"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.runs < 1:
        build_parser().error("--runs must be at least 1")
    sizes = QUICK if args.quick else FULL
    plan = Plan(sizes, tuple(args.scenarios))
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (
        sys.argv[1:] if argv is None else argv))
    targets = {kind: Target(kind, args.pg_admin_url) for kind in args.databases}
    try:
        described = machine({kind: t.version() for kind, t in targets.items()})
        if not args.json:
            print(describe(described), flush=True)
        started = time.monotonic()
        if args.peers:
            rows, errors = peers.run(targets, sizes.peers, args.runs, progress)
        else:
            rows, errors = run(plan, targets, args.runs)
        progress(f"finished in {time.monotonic() - started:.0f} s")
    finally:
        for target in targets.values():
            target.cleanup()
    if args.json:
        settings = {"sizes": asdict(sizes), "runs": args.runs, "databases": args.databases,
                    "peers": args.peers,
                    "scenarios": plan.scenarios}
        json.dump(as_json(described, command.strip(), settings, rows, errors), sys.stdout,
                  indent=2)
        print()
    elif args.peers:
        print(peers.render(command.strip(), sizes.peers, rows, errors))
    else:
        print(render(command.strip(), rows, errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
