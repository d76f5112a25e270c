"""The documentation cannot rot: every ``aol`` command it shows parses with the real parser,
and the plugin tutorial in docs/plugins.md is built from its code blocks, installed, tested,
checked and run through a real worker."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr
from io import StringIO
from pathlib import Path

import pytest

from aol_core.cli import build_parser
from aol_core.config import Settings
from aol_core.plugins import load_plugins
from helpers import run_aol

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted(ROOT.glob("plugins/*/README.md"))]
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(aol [^`]+)`")
#: placeholders an inline command may use, and what stands in for them
PLACEHOLDER = re.compile(r"\b[A-Z]{1,8}\b|\[|\.\.\.|\\\||<")


def shell_commands() -> Iterator[tuple[str, str]]:
    """``aol`` lines of the shell blocks (the tutorial's run block has a test of its own)."""
    for path in DOCS:
        for lang, info, body in BLOCK.findall(path.read_text()):
            if lang not in ("sh", "bash", "console") or "tutorial-run" in info:
                continue
            for line in body.replace("\\\n", " ").splitlines():  # continued lines are one
                for part in re.split(r"&&|;", line):
                    words = shlex.split(part, comments=True)
                    if words and Path(words[0]).name == "aol":
                        yield path.name, shlex.join(words[1:])


def inline_commands() -> Iterator[tuple[str, str]]:
    """Commands quoted in running text, except synopses with placeholders (``ID``, ``[..]``)."""
    for path in DOCS:
        for quoted in INLINE.findall(path.read_text()):
            for part in re.split(r"&&|;", " ".join(quoted.split())):
                command = part.split(" | ")[0].strip().removeprefix("aol ")  # piped onwards
                if not PLACEHOLDER.search(command.replace("--", "")):
                    yield path.name, command


def parse(command: str) -> str | None:
    """The parser's complaint about ``aol command``, or None if it parses."""
    parser = build_parser(load_plugins(Settings(plugins=None)))
    errors = StringIO()
    try:
        with redirect_stderr(errors):
            parser.parse_args(shlex.split(command))
    except SystemExit as exc:
        return None if exc.code == 0 else errors.getvalue().strip().splitlines()[-1]
    return None


@pytest.mark.parametrize(("document", "command"), list(shell_commands()))
def test_a_command_in_a_shell_block_parses(document: str, command: str) -> None:
    assert parse(command) is None, f"{document}: aol {command}"


@pytest.mark.parametrize(("document", "command"), list(inline_commands()))
def test_a_command_quoted_in_text_parses(document: str, command: str) -> None:
    # Text may name a command without its arguments ("`aol actions show` gives ..."); it
    # may not show one that cannot work.
    complaint = parse(command)
    assert complaint is None or "arguments are required" in complaint, (
        f"{document}: aol {command}: {complaint}")


TUTORIAL = (ROOT / "docs" / "plugins.md").read_text().split("## Tutorial", 1)[1]


def tutorial_files() -> dict[str, str]:
    return {info.split("file=", 1)[1].strip(): body
            for _lang, info, body in BLOCK.findall(TUTORIAL) if "file=" in info}


def tutorial_run() -> list[str]:
    (body,) = [body for _lang, info, body in BLOCK.findall(TUTORIAL) if "tutorial-run" in info]
    return [line for line in body.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tutorial_plugin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The tutorial's plugin, written from its code blocks and pip-installed on its own path."""
    root = tmp_path_factory.mktemp("tutorial")
    plugin = root / "acme-mail"
    for name, body in tutorial_files().items():
        (plugin / name).parent.mkdir(parents=True, exist_ok=True)
        (plugin / name).write_text(body)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(root / "site"), str(plugin)], check=True, timeout=600)
    return {"PYTHONPATH": f"{root / 'site'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "AOL_PLUGINS": "acme-mail", "TUTORIAL_DIR": str(plugin)}


def test_the_tutorial_shows_every_file_of_its_plugin() -> None:
    assert set(tutorial_files()) == {
        "pyproject.toml", "src/acme_mail/__init__.py", "src/acme_mail/plugin.py",
        "src/acme_mail/migrations/__init__.py", "src/acme_mail/migrations/0001_outbox.py",
        "tests/conftest.py", "tests/test_send_mail.py"}


@pytest.mark.slow
def test_the_tutorials_plugin_passes_its_tests(tutorial_plugin: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            capture_output=True, text=True, timeout=600,
                            cwd=tutorial_plugin["TUTORIAL_DIR"],
                            env={**os.environ, **tutorial_plugin})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "failed" not in result.stdout and "error" not in result.stdout


@pytest.mark.slow
def test_the_tutorials_commands_run_its_action_through_a_worker(
    tutorial_plugin: dict[str, str], db_url: str
) -> None:
    env = {**tutorial_plugin, "AOL_DATABASE_URL": db_url}
    outputs = []
    for line in tutorial_run():
        result = run_aol(*shlex.split(line)[1:], env=env, timeout=120)
        assert result.returncode == 0, f"{line}: {result.stdout}{result.stderr}"
        outputs.append(result.stdout)
    assert "team@example.com  hello" in outputs[-1]
