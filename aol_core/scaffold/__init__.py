"""``aol new-plugin``: a complete plugin distribution from the templates beside this module.

The templates (``template/``, package data) are ``string.Template`` files ending in ``.tmpl``;
``__module__`` in a path becomes the plugin's import name. What they produce installs with
``pip install -e DIR``, passes ``pytest DIR`` and ``aol plugins check`` as generated.
"""

from __future__ import annotations

import keyword
import re
import string
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.abc import Traversable
from importlib.util import find_spec
from pathlib import Path

from aol_core.config import Settings
from aol_core.errors import AOLError
from aol_core.plugins import PLUGIN_API_VERSION, canonical, load_plugins

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_TYPE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SUFFIX = ".tmpl"
#: names a plugin cannot take, and why
_RESERVED = {"aol": "its migrations would share the core's version table; choose e.g. acme-aol"}


@dataclass(frozen=True)
class NewPlugin:
    name: str
    module: str
    action_type: str
    directory: Path


def plan(name: str, directory: Path | None = None, action_type: str | None = None) -> NewPlugin:
    """Check the names and the target before anything is written; refuse with one line."""
    if not _NAME.match(name):
        raise AOLError(f"invalid plugin name {name!r}: use lowercase letters, digits and "
                       "single hyphens, starting with a letter (e.g. acme-mail)")
    if name in _RESERVED:
        raise AOLError(f"invalid plugin name {name!r}: {_RESERVED[name]}")
    module = name.replace("-", "_")
    if keyword.iskeyword(module):
        raise AOLError(f"invalid plugin name {name!r}: {module} is a Python keyword")
    action_type = module.upper() if action_type is None else action_type
    if not _TYPE.match(action_type):
        raise AOLError(f"invalid action type {action_type!r}: use uppercase letters, digits "
                       "and underscores, starting with a letter (e.g. SEND_MAIL)")
    owner = _declared_by(action_type)
    if owner is not None:
        raise AOLError(f"action type {action_type} is taken: the installed plugin {owner} "
                       "declares it (two plugins declaring one type stop every worker); "
                       "choose another with --action-type")
    if _installed(name):
        raise AOLError(f"plugin name {name!r} is taken: a distribution of that name is "
                       "installed here")
    if find_spec(module) is not None:
        raise AOLError(f"plugin name {name!r} is taken: a module {module} is importable here")
    target = directory if directory is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AOLError(f"{target} exists and is not an empty directory; choose another "
                       "with --directory")
    return NewPlugin(name, module, action_type, target)


def _installed(name: str) -> bool:
    return any(canonical(d.metadata["Name"] or "") == canonical(name)
               for d in metadata.distributions())


def _declared_by(action_type: str) -> str | None:
    """The installed plugin (selected or not) that declares ``action_type``, if any."""
    everything = load_plugins(Settings(plugins=None, disabled_plugins=()))
    return next((p.distribution for p in everything.plugins if action_type in p.action_types),
                None)


def write(plugin: NewPlugin) -> list[Path]:
    """Write the distribution; returns the files written (a directory that cannot be
    written is one line naming it)."""
    try:
        return _write(plugin)
    except OSError as exc:
        raise AOLError(f"cannot write the plugin to {plugin.directory}: "
                       f"{exc.strerror or exc}") from None


def _write(plugin: NewPlugin) -> list[Path]:
    core = metadata.version("aol-core")
    major = PLUGIN_API_VERSION.split(".")[0]
    values = {
        "name": plugin.name, "module": plugin.module, "action_type": plugin.action_type,
        "constant": plugin.action_type, "api_version": PLUGIN_API_VERSION, "api_major": major,
        "core_version": core, "core_next_major": f"{int(core.split('.')[0]) + 1}",
    }
    written = []
    for source, relative in _templates(resources.files(__name__) / "template", ""):
        target = plugin.directory / relative.replace("__module__", plugin.module)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(string.Template(source.read_text()).substitute(values))
        written.append(target)
    return written


def _templates(folder: Traversable, prefix: str) -> list[tuple[Traversable, str]]:
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found += _templates(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(_SUFFIX):
            found.append((entry, prefix + entry.name[: -len(_SUFFIX)]))
    return found
