"""The machine description, the results table, and the JSON form of both."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One measured quantity on one database, over all runs."""

    database: str
    scenario: str
    label: str
    unit: str
    values: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    higher_is_better: bool = True
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def floor_median(self) -> float | None:
        return statistics.median(self.floor) if self.floor else None

    @property
    def vs_floor(self) -> float | None:
        """AOL's rate as a fraction of the floor's (1.0: as fast as raw SQL)."""
        floor = self.floor_median
        return self.median / floor if floor else None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median=self.median, min=min(self.values), max=max(self.values),
                   floor_median=self.floor_median, vs_floor=self.vs_floor)
        return out


def machine(db_versions: dict[str, str]) -> dict[str, str]:
    cpu = "?"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram = "?"
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    described = {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "aol-core": _version("aol-core"),
        "sqlalchemy": _version("sqlalchemy"),
        "psycopg": _version("psycopg"),
        "git": _git_head(),
    }
    described.update({name: ver for name, ver in db_versions.items()})
    return described


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


def _git_head() -> str:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent)
    except (OSError, subprocess.CalledProcessError):
        return "-"
    return out.stdout.strip()


def number(value: float, unit: str) -> str:
    if unit == "actions/s" or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def describe(described: dict[str, str]) -> str:
    return "Machine: " + ", ".join(f"{k} {v}" for k, v in described.items())


def render(command: str, rows: list[Row], errors: list[str]) -> str:
    lines = [f"Command: {command}", ""]
    headers = ["database", "scenario", "median", "spread (min-max)", "unit", "floor",
               "vs floor", "note"]
    cells = [
        [
            row.database, row.label, number(row.median, row.unit),
            f"{number(min(row.values), row.unit)}-{number(max(row.values), row.unit)}",
            row.unit,
            "" if row.floor_median is None else number(row.floor_median, row.unit),
            "" if row.vs_floor is None else f"{100 * row.vs_floor:.1f}%",
            row.note,
        ]
        for row in rows
    ]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = {2, 3, 5, 6}
    for row_cells in [headers, ["-" * w for w in widths], *cells]:
        lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(row_cells, widths, strict=True)))
                     .rstrip())
    lines += ["", "vs floor: AOL's rate as a percentage of the raw-SQL floor's on the same "
              "database (100% = as fast as raw SQL)."]
    lines += [f"ERROR {error}" for error in errors]
    return "\n".join(lines)


def as_json(described: dict[str, str], command: str, settings: dict[str, Any],
            rows: list[Row], errors: list[str]) -> dict[str, Any]:
    return {"machine": described, "command": command, "settings": settings,
            "results": [row.as_json() for row in rows], "errors": errors}
