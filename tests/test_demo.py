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
                if block.strip().startswith("ID ")]
    assert table[0].split()[:3] == ["ID", "TYPE", "STATUS"]
    rows = [line.split() for line in table[1:]]
    assert {row[1] for row in rows} >= {"POST_SOCIAL", "CAMPAIGN_TICK",
                                        "WEEKLY_CAMPAIGN_SUMMARY"}
    assert {row[2] for row in rows} == {"SUCCESS"}
    assert (tmp_path / "demo" / "demo.db").exists()
