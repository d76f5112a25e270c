"""Every distribution builds a wheel and an sdist with ``python -m build`` (as a publisher
builds them), and the wheels alone, installed into a fresh virtual environment, give a
working ``aol`` with both plugins: nothing a release needs is left out of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: distribution name -> its source directory
DISTRIBUTIONS = {"aol_core": ROOT, "aol_social": ROOT / "plugins" / "aol-social",
                 "aol_campaign_ops": ROOT / "plugins" / "aol-campaign-ops"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory holding every distribution's wheel and sdist."""
    out = tmp_path_factory.mktemp("dist")
    for source in DISTRIBUTIONS.values():
        result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out),
                                 str(source)], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{source}: {result.stdout[-2000:]}{result.stderr}"
    return out


@pytest.fixture(scope="module")
def fresh_venv(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the three wheels installed (their dependencies from
    the package index or pip's cache), and nothing of this checkout."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    wheels = sorted(str(wheel) for wheel in built.glob("*.whl"))
    result = subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q",
                             "--find-links", str(built), *wheels],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return home


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_each_distribution_builds_a_wheel_and_an_sdist(built: Path, name: str) -> None:
    assert len(list(built.glob(f"{name}-*-py3-none-any.whl"))) == 1
    assert len(list(built.glob(f"{name}-*.tar.gz"))) == 1


@pytest.mark.slow
def test_the_wheels_give_a_working_aol_in_a_fresh_environment(
    fresh_venv: Path, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AOL_", "PYTHON", "VIRTUAL_ENV"))}
    env["AOL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'aol.db'}"

    def aol(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(fresh_venv / "bin" / "aol"), *args], capture_output=True,
                              text=True, timeout=300, env=env, cwd=tmp_path)

    upgraded = aol("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    listed = aol("plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {p["distribution"]: p["state"] for p in json.loads(listed.stdout)} == {
        "aol-social": "active", "aol-campaign-ops": "active"}
    imported = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c",
         "import aol_core, aol_social, aol_campaign_ops; print(aol_core.__file__)"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(str(fresh_venv))
