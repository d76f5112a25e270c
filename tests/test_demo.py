"""``aol demo``: the Quick start's first command, on the real plugins of this repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REAL_PLUGINS = "aol-social,aol-campaign-ops"


def test_the_demo_runs_every_example_of_the_real_plugins_to_success(tmp_path: Path) -> None:
    pytest.importorskip("aol_social", reason="plugins/aol-social is not installed")
    pytest.importorskip("aol_campaign_ops", reason="plugins/aol-campaign-ops is not installed")
    result = subprocess.run(
        [sys.executable, "-m", "aol_core.cli", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "AOL_PLUGINS": REAL_PLUGINS},
    )
    assert result.returncode == 0, result.stderr
    (table,) = [block.strip().splitlines() for block in result.stdout.split("\n\n")
                if block.strip().startswith("ID  TYPE")]
    assert table[0].split()[:3] == ["ID", "TYPE", "STATUS"]
    rows = [line.split() for line in table[1:]]
    assert {row[1] for row in rows} >= {"POST_SOCIAL", "CAMPAIGN_TICK",
                                        "WEEKLY_CAMPAIGN_SUMMARY"}
    assert {row[2] for row in rows} == {"SUCCESS"}
    assert (tmp_path / "demo" / "demo.db").exists()


def test_the_demo_lists_what_its_actions_recorded_and_how_to_read_it(tmp_path: Path) -> None:
    pytest.importorskip("aol_social", reason="plugins/aol-social is not installed")
    pytest.importorskip("aol_campaign_ops", reason="plugins/aol-campaign-ops is not installed")
    env = {**os.environ, "AOL_PLUGINS": REAL_PLUGINS}
    result = subprocess.run(
        [sys.executable, "-m", "aol_core.cli", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stderr
    (listing,) = [block.strip().splitlines() for block in result.stdout.split("\n\n")
                  if block.strip().startswith("ID  ARTIFACT")]
    recorded = {line.split()[1] for line in listing[1:]}
    assert {"requests.json", "escalation.eml", "report.html"} <= recorded
    (hint,) = [line for line in result.stdout.splitlines() if line.startswith("save one")]
    command, target = hint.split(": ", 1)[1].split(" > ")
    assert target.endswith(".html")
    argv = command.split()
    assert argv[:3] == [Path(sys.executable).name, "-m", "aol_core.cli"]
    report = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=env)
    assert report.returncode == 0, report.stderr
    assert report.stdout.lstrip().lower().startswith("<!doctype html")
