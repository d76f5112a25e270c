"""The documentation cannot rot: every ``aol`` command it shows parses with the real parser;
the ``aol`` commands of each shell block run, in order, on a throwaway SQLite database (a
block that cannot, say one needing a live platform, is preceded in the docs source by
``<!-- docs-test: not run: REASON -->``); and the plugin tutorial in docs/plugins.md is built
from its code blocks, installed, tested, checked and run through a real worker."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass
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


#: the comment that keeps the next shell block from being run, with the reason it cannot be
NOT_RUN = re.compile(r"^<!--\s*docs-test:\s*not run:(.*?)-->\s*\Z", re.S | re.M)
#: every marker, on a line of its own (text may quote the form inline)
NOT_RUN_ANYWHERE = re.compile(r"^<!--\s*docs-test:\s*not run:", re.M)


@dataclass(frozen=True)
class ShellBlock:
    document: str
    line: int
    #: each command's words, in order (continued lines joined; ``&&`` and ``;`` split)
    commands: tuple[tuple[str, ...], ...]
    #: why the block is only parsed, as its marker comment says (None: it runs)
    not_run: str | None

    @property
    def aol_commands(self) -> list[tuple[str, ...]]:
        return [words for words in self.commands if is_aol(words)]

    def __str__(self) -> str:
        return f"{self.document}:{self.line}"


def is_aol(words: tuple[str, ...]) -> bool:
    return Path(words[0]).name == "aol"  # ``.venv/bin/aol`` as well


def shell_blocks() -> Iterator[ShellBlock]:
    """The shell blocks of every document (the tutorial's run block has a test of its own)."""
    for path in DOCS:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            lang, info, body = match.groups()
            if lang not in ("sh", "bash", "console") or "tutorial-run" in info:
                continue
            marker = NOT_RUN.search(text[:match.start()])
            commands = tuple(
                tuple(words)
                for line in body.replace("\\\n", " ").splitlines()  # continued lines are one
                for part in re.split(r"&&|;", line)
                if (words := shlex.split(part, comments=True)))
            yield ShellBlock(str(path.relative_to(ROOT)), text[:match.start()].count("\n") + 1,
                             commands, marker.group(1).strip() if marker else None)


def shell_commands() -> Iterator[tuple[str, str]]:
    """``aol`` lines of the shell blocks, run or not."""
    for block in shell_blocks():
        for words in block.aol_commands:
            yield block.document, shlex.join(words[1:])


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


RUNNABLE = [block for block in shell_blocks() if block.aol_commands and block.not_run is None]


@pytest.mark.parametrize("block", RUNNABLE, ids=str)
def test_the_commands_of_a_shell_block_run(block: ShellBlock, tmp_path: Path) -> None:
    # As a reader types them: in a directory of their own, on a database ``aol db upgrade``
    # made, with the block's ``export``s; what is not ``aol`` (pip, mkdir) is not run here.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AOL_")}
    env["AOL_DATABASE_URL"] = f"sqlite:///{tmp_path / 'aol.db'}"
    for words in (("aol", "db", "upgrade"), *block.commands):
        if words[0] == "export":
            env.update(word.split("=", 1) for word in words[1:])
        elif is_aol(words):
            result = subprocess.run([sys.executable, "-m", "aol_core.cli", *words[1:]],
                                    capture_output=True, text=True, timeout=120, env=env,
                                    cwd=tmp_path)
            assert result.returncode == 0, (
                f"{block}: {shlex.join(words)} exited {result.returncode}: "
                f"{result.stderr.strip() or result.stdout[-1000:]}")


def test_a_shell_block_left_unrun_says_why() -> None:
    marked = [block for block in shell_blocks() if block.not_run is not None]
    assert all(block.not_run for block in marked), [str(b) for b in marked if not b.not_run]
    assert all(block.aol_commands for block in marked), "a marker before a block with no aol"
    markers = sum(len(NOT_RUN_ANYWHERE.findall(path.read_text())) for path in DOCS)
    assert markers == len(marked), "a docs-test marker that no shell block follows"


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
