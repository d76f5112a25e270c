"""Subcommands that plugins add through ``aol_register_commands``, each labelled with its plugin."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aol_core.errors import AOLError, PluginError
from aol_core.plugins import PluginInfo, PluginRegistry


class PluginCommands:
    """What a plugin's ``aol_register_commands`` receives: ``add_parser`` as in argparse,
    refusing names already taken and labelling the help with the plugin's distribution."""

    def __init__(self, commands: Any, owners: dict[str, str], plugin: PluginInfo) -> None:
        self._commands = commands
        self._owners = owners
        self._plugin = plugin

    def add_parser(self, name: str, **options: Any) -> argparse.ArgumentParser:
        if name in self._owners:
            raise PluginError(f"command {name!r} is already provided by {self._owners[name]}")
        options["help"] = " ".join(
            part for part in (options.get("help"), f"[plugin {self._plugin.distribution}]")
            if part)
        parser: argparse.ArgumentParser = self._commands.add_parser(name, **options)
        parser.set_defaults(handler=_without_handler(name, self._plugin))
        self._owners[name] = f"plugin {self._plugin.distribution}"
        if name not in self._plugin.commands:  # a registry is reused across parsers
            self._plugin.commands.append(name)
        return parser


def _without_handler(name: str, plugin: PluginInfo) -> Any:
    """What runs when a plugin forgot ``set_defaults(handler=...)``: one line naming it,
    instead of an internal error that names no one."""
    def refuse(ctx: object, args: argparse.Namespace) -> int:
        raise AOLError(f"command {name} of plugin {plugin.label} has no handler: the plugin "
                       "must call set_defaults(handler=...) on its parser")
    return refuse


def add_plugin_commands(commands: Any, registry: PluginRegistry) -> None:
    """Let each loaded plugin add its commands; one that fails is named on stderr and the
    rest of ``aol`` still works (its commands are simply absent, those it added before it
    failed included)."""
    owners = {name: "aol-core" for name in commands.choices}
    for plugin in registry.loaded:
        before = set(commands.choices)
        try:
            registry.call(plugin, "aol_register_commands",
                          commands=PluginCommands(commands, owners, plugin))
        except Exception as exc:
            print(f"aol: warning: plugin {plugin.label} could not add its commands: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
            _remove(commands, owners, plugin, set(commands.choices) - before)


def _remove(commands: Any, owners: dict[str, str], plugin: PluginInfo, names: set[str]) -> None:
    """Take back the commands a plugin added before its hook failed: all or none of them."""
    for name in names:
        del commands.choices[name]
        del owners[name]
        if name in plugin.commands:
            plugin.commands.remove(name)
    # argparse keeps the help lines apart from the parsers (no public way to remove one)
    commands._choices_actions[:] = [action for action in commands._choices_actions
                                    if action.dest not in names]
