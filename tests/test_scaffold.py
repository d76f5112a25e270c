"""``aol new-plugin``: what it writes installs, passes its own tests, is listed and checked by
``aol plugins``, and runs in a real worker; bad or taken names are refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aol_core.plugins import PLUGIN_API_VERSION
from aol_core.testing.pytest_plugin import postgres_url
from helpers import aol, run_aol

NAME = "acme-scaffolded"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The generated distribution, pip-installed into a directory of its own (with build
    isolation, as a user's ``pip install`` does); the environment that sees it."""
    root = tmp_path_factory.mktemp("scaffold")
    written = run_aol("new-plugin", NAME, "--directory", str(root / NAME),
                      "--action-type", "ACME_DELIVER")
    assert written.returncode == 0, written.stderr
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(root / "site"), str(root / NAME)], check=True, timeout=600)
    yield {"PYTHONPATH": f"{root / 'site'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "AOL_PLUGINS": NAME, "SCAFFOLD_DIR": str(root / NAME)}


@pytest.mark.slow
def test_the_generated_plugin_passes_its_own_tests(installed: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         installed["SCAFFOLD_DIR"]],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, **installed}, cwd=installed["SCAFFOLD_DIR"])
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.slow
def test_the_generated_plugin_is_listed_and_passes_the_check(installed: dict[str, str]) -> None:
    listed = run_aol("plugins", "--json", env=installed)
    assert listed.returncode == 0, listed.stderr
    (plugin,) = [p for p in json.loads(listed.stdout) if p["distribution"] == NAME]
    assert (plugin["state"], plugin["action_types"], plugin["api_version"]) == (
        "active", ["ACME_DELIVER"], PLUGIN_API_VERSION)
    checked = run_aol("plugins", "check", NAME, env=installed, timeout=120)
    assert checked.returncode == 0, checked.stdout
    assert "ok    acme-scaffolded 0.1.0  ACME_DELIVER: permanent failure [Contract]: FAILED " \
           "after one attempt" in checked.stdout
    assert "not checked" not in checked.stdout


@pytest.mark.slow
def test_a_worker_runs_the_generated_plugins_action(installed: dict[str, str],
                                                   db_url: str) -> None:
    assert aol("db", "upgrade", db_url=db_url, env=installed).returncode == 0
    enqueued = aol("enqueue", "ACME_DELIVER", "--payload", '{"message": "hi"}', "--json",
                   db_url=db_url, env=installed)
    assert enqueued.returncode == 0, enqueued.stderr
    action_id = str(json.loads(enqueued.stdout)["id"])
    worked = aol("worker", "--burst", db_url=db_url, env=installed)
    assert worked.returncode == 0, worked.stderr
    shown = json.loads(aol("actions", "show", action_id, "--json", db_url=db_url,
                           env=installed).stdout)
    assert (shown["status"], shown["result"]) == ("SUCCESS", {"delivered": "hi"})


def collected_databases(installed: dict[str, str], **env: str) -> set[str]:
    """The databases the generated tests would run on, in an environment without the
    PostgreSQL variables except those in ``env``."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("AOL_TEST_POSTGRES_URL", "AOL_REQUIRE_POSTGRES")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=300, cwd=installed["SCAFFOLD_DIR"],
        env={**clean, **installed, **env})
    assert result.returncode == 0, result.stdout[-3000:]
    return {database for database in ("sqlite", "postgresql")
            if f"[{database}]" in result.stdout}


@pytest.mark.slow
def test_the_generated_tests_use_postgresql_only_when_a_url_is_set(
    installed: dict[str, str]
) -> None:
    assert collected_databases(installed) == {"sqlite"}
    assert collected_databases(installed, AOL_TEST_POSTGRES_URL=postgres_url()) == {
        "sqlite", "postgresql"}


@pytest.mark.parametrize(("args", "message"), [
    (["Acme"], "invalid plugin name 'Acme'"),
    (["acme--mail"], "invalid plugin name 'acme--mail'"),
    (["acme", "--action-type", "send-mail"], "invalid action type 'send-mail'"),
    (["acme", "--action-type", ""], "invalid action type ''"),
    (["aol-test-actions"], "plugin name 'aol-test-actions' is taken"),
    (["json"], "plugin name 'json' is taken: a module json is importable here"),
])
def test_an_invalid_or_taken_name_is_refused_in_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = run_aol("new-plugin", *args, "--directory", str(tmp_path / "out"))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"aol: error: {message}")
    assert not (tmp_path / "out").exists()


def test_a_directory_with_files_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run_aol("new-plugin", "acme-new", "--directory", str(tmp_path))
    assert result.returncode == 1
    assert "is not an empty directory" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
