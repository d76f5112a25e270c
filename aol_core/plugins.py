"""Plugin discovery and the routing table: which plugin runs which action type.

Each entry point of the ``aicmo.actions`` group is loaded on its own, so one that fails to
import is named rather than hiding the others, and two distributions declaring one action
type are reported together instead of the last one silently winning. A plugin built for
another major version of the plugin API is refused the same way, naming both versions.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

import pluggy
from sqlalchemy import MetaData
from sqlalchemy.orm import Session

from aol_core import hookspecs
from aol_core.config import Settings
from aol_core.context import ActionContext
from aol_core.errors import PluginError
from aol_core.schedules import Schedule
from aol_core.specs import ActionSpec

ENTRY_POINT_GROUP = "aicmo.actions"
#: the plugin API this aol-core provides (major.minor): a plugin targeting another major is
#: refused, one targeting a newer minor loads with a warning (docs/plugins.md, "Versions")
PLUGIN_API_VERSION = "1.1"
#: what a plugin that does not implement ``aol_api_version`` targets: the first API
UNDECLARED_API_VERSION = "1.0"
HANDLE_ARGS = ("action_type", "session", "payload", "proof_mode", "context")

Handler = Callable[[str, Session, dict[str, Any], bool, ActionContext], Any]

log = logging.getLogger("aol.plugins")


@dataclass
class PluginInfo:
    """One entry point as ``aol plugins`` shows it. ``status``: loaded, broken, disabled,
    or not selected (``AOL_PLUGINS`` names other distributions). ``conflicts_with`` names
    the distributions declaring one of its types too; ``warning`` says what to look at in a
    plugin that loaded (a newer minor API version)."""

    distribution: str
    version: str
    entry_point: str
    status: str
    action_types: list[str] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    error: str | None = None
    api_version: str | None = None
    warning: str | None = None
    conflicts_with: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    plugin: Any = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version} ({self.entry_point})"


@dataclass(frozen=True)
class Route:
    spec: ActionSpec
    plugin: PluginInfo
    handler: Handler


@dataclass
class PluginRegistry:
    """What the installed plugins provide; the worker builds it once at start-up."""

    plugins: list[PluginInfo]
    routes: dict[str, Route]
    conflicts: list[str]
    manager: pluggy.PluginManager
    #: ``(variable, name)`` for each name in ``AOL_PLUGINS`` / ``AOL_DISABLE_PLUGINS`` that
    #: is not an installed distribution (a typo would otherwise pass in silence)
    unknown_names: list[tuple[str, str]] = field(default_factory=list)

    @functools.cached_property
    def specs(self) -> dict[str, ActionSpec]:
        """The declared action types (built once: the routing table does not change)."""
        return {name: route.spec for name, route in self.routes.items()}

    @functools.cached_property
    def schedules(self) -> dict[str, Schedule]:
        """The schedules loaded plugins declare, by name (a name two declare is a conflict)."""
        return {schedule.name: schedule for plugin in self.plugins
                if plugin.status == "loaded" for schedule in plugin.schedules}

    @property
    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "broken"]

    @property
    def loaded(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.status == "loaded"]

    @property
    def warnings(self) -> list[str]:
        """What an operator should hear about at start-up, although nothing stops."""
        notes = [f"plugin {p.label}: {p.warning}" for p in self.loaded if p.warning]
        notes += [f"{var} names {name}, which is not an installed plugin distribution"
                  for var, name in self.unknown_names]
        return notes

    def call(self, info: PluginInfo, hook_name: str, **arguments: Any) -> list[Any]:
        """Call ``info``'s own implementations of one hook (none unless it loaded), each
        with the arguments it accepts; returns their results."""
        if info.status != "loaded" or info.plugin is None:
            return []
        caller = getattr(self.manager.hook, hook_name)
        return [impl.function(**{name: arguments[name] for name in impl.argnames})
                for impl in caller.get_hookimpls() if impl.plugin is info.plugin]

    def check(self, allow_broken: bool) -> None:
        """Refuse to run with conflicting plugins, or broken ones unless ``allow_broken``."""
        problems = list(self.conflicts)
        if not allow_broken:
            problems += [f"plugin {p.label} is broken: {p.error}" for p in self.broken]
        if problems:
            hint = (" (uninstall one, or leave it out with AOL_DISABLE_PLUGINS; "
                    "--allow-broken-plugins does not admit conflicts)" if self.conflicts
                    else " (--allow-broken-plugins runs the rest)")
            raise PluginError("; ".join(problems) + hint)

    def tables(self, info: PluginInfo) -> set[str]:
        """The names of the tables ``info``'s plugin owns (declared through ``aol_schema``)."""
        return {name for metadata in self.call(info, "aol_schema") for name in metadata.tables}

    def example_actions(self, session: Session) -> list[tuple[str, Mapping[str, Any]]]:
        return [pair for pairs in self.manager.hook.aol_example_actions(session=session)
                for pair in pairs]


ActionCatalog = PluginRegistry


def canonical(name: str) -> str:
    """Distribution names compare as packaging does: case and -_. do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()


def load_plugins(
    settings: Settings | None = None, found: Iterable[EntryPoint] | None = None
) -> PluginRegistry:
    """Load the selected plugins, build the routing table, and record what went wrong."""
    settings = settings if settings is not None else Settings.from_env()
    selected = None if settings.plugins is None else {canonical(n) for n in settings.plugins}
    disabled = {canonical(n) for n in settings.disabled_plugins}
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)

    plugins: list[PluginInfo] = []
    owners: dict[str, list[Route]] = {}
    candidates = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
    for ep in sorted(candidates, key=lambda e: (_dist(e)[0], e.name)):
        dist, version = _dist(ep)
        info = PluginInfo(dist, version, f"{ep.name} = {ep.value}", "loaded")
        plugins.append(info)
        if selected is not None and canonical(dist) not in selected:
            info.status = "not selected"
        elif canonical(dist) in disabled:
            info.status = "disabled"
        else:
            try:
                for route in _load(manager, ep, info):
                    owners.setdefault(route.spec.name, []).append(route)
            except Exception as exc:
                info.status, info.error = "broken", f"{type(exc).__name__}: {exc}"
                if info.plugin is not None and manager.is_registered(info.plugin):
                    manager.unregister(info.plugin)

    conflicts = [
        f"action type {name} is declared by {' and by '.join(r.plugin.label for r in routes)}"
        for name, routes in sorted(owners.items())
        if len(routes) > 1
    ]
    schedule_owners: dict[str, list[str]] = {}
    for info in plugins:
        for schedule in info.schedules if info.status == "loaded" else ():
            schedule_owners.setdefault(schedule.name, []).append(info.label)
    conflicts += [
        f"schedule {name} is declared by {' and by '.join(labels)}"
        for name, labels in sorted(schedule_owners.items())
        if len(labels) > 1
    ]
    for shared in (routes for routes in owners.values() if len(routes) > 1):
        for route in shared:
            others = {r.plugin.distribution for r in shared} - {route.plugin.distribution}
            route.plugin.conflicts_with = sorted({*route.plugin.conflicts_with, *others})
    routes = {name: routes[0] for name, routes in owners.items() if len(routes) == 1}
    installed = {canonical(p.distribution) for p in plugins}
    unknown = [(var, name) for var, names in (("AOL_PLUGINS", settings.plugins or ()),
                                              ("AOL_DISABLE_PLUGINS", settings.disabled_plugins))
               for name in names if canonical(name) not in installed]
    return PluginRegistry(plugins, routes, conflicts, manager, unknown)


def _dist(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    return (dist.name, dist.version) if dist is not None else ("<unknown>", "?")


def _load(manager: pluggy.PluginManager, ep: EntryPoint, info: PluginInfo) -> list[Route]:
    plugin = ep.load()
    if manager.is_registered(plugin):
        raise PluginError(f"{ep.value} is already registered by another entry point")
    info.plugin = plugin
    manager.register(plugin, name=f"{info.distribution}:{ep.name}")
    unknown = [c.name for c in manager.get_hookcallers(plugin) or () if c.spec is None]
    if unknown:
        raise PluginError(f"implements unknown hook(s) {', '.join(unknown)}")

    def own(hook_name: str) -> list[pluggy.HookImpl]:
        caller = getattr(manager.hook, hook_name)
        return [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]

    info.api_version = _targeted_api(own("aol_api_version"))
    info.warning = _api_warning(info.api_version)
    declared: list[ActionSpec] = []
    for impl in own("aol_register_actions"):
        items = impl.function() or ()
        if isinstance(items, str | ActionSpec):  # one type, not a sequence of letters
            items = [items]
        declared += [_as_spec(item) for item in cast(Iterable[str | ActionSpec], items)]
    for impl in own("aol_schedules"):
        schedules = cast(Iterable[object], impl.function() or ())
        info.schedules += [_as_schedule(item) for item in schedules]
    for impl in own("aol_schema"):
        _as_metadata(impl.function())
    handlers = own("handle_action")
    if declared and not handlers:
        raise PluginError("declares action types but implements no handle_action")
    if handlers and not declared:
        raise PluginError("implements handle_action but declares no action types "
                          "(add an aol_register_actions hook)")
    info.action_types = sorted({spec.name for spec in declared})
    handler = _positional(handlers[0]) if handlers else None
    return [Route(spec, info, handler) for spec in declared if handler is not None]


def _targeted_api(impls: list[pluggy.HookImpl]) -> str:
    """The plugin API version a plugin declares (``major.minor``), refused if another major."""
    declared = impls[0].function() if impls else UNDECLARED_API_VERSION
    if not isinstance(declared, str) or not re.fullmatch(r"\d+\.\d+", declared):
        raise PluginError(f"aol_api_version returned {declared!r}; expected \"major.minor\" "
                          f"such as {PLUGIN_API_VERSION!r}")
    if _major(declared) != _major(PLUGIN_API_VERSION):
        raise PluginError(
            f"targets plugin API {declared}, but this aol-core provides {PLUGIN_API_VERSION}: "
            f"install a release of the plugin built for API {_major(PLUGIN_API_VERSION)}.x "
            f"or an aol-core providing API {declared}")
    return declared


def _api_warning(targeted: str) -> str | None:
    minor = int(targeted.split(".")[1])
    if minor <= int(PLUGIN_API_VERSION.split(".")[1]):
        return None
    return (f"targets plugin API {targeted}, newer than this aol-core's {PLUGIN_API_VERSION}: "
            "upgrade aol-core, or hooks it relies on may never be called")


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _as_spec(item: str | ActionSpec) -> ActionSpec:
    spec = ActionSpec(item) if isinstance(item, str) else item
    if not isinstance(spec, ActionSpec) or not isinstance(spec.name, str) or not spec.name:
        raise PluginError(f"aol_register_actions returned {item!r}; expected a name or ActionSpec")
    try:
        _ = spec.validator
    except Exception as exc:  # jsonschema.SchemaError, without importing jsonschema for all
        message = getattr(exc, "message", str(exc))
        raise PluginError(f"payload schema of {spec.name} is invalid: {message}") from None
    return spec


def _as_schedule(item: object) -> Schedule:
    if not isinstance(item, Schedule):
        raise PluginError(f"aol_schedules returned {item!r}; expected Schedule objects")
    return item


def _as_metadata(item: object) -> None:
    """Refuse junk from ``aol_schema`` at load, where it names the plugin, rather than in
    ``aol db upgrade`` or ``aol plugins``, which would fail without naming it."""
    if not isinstance(item, MetaData):
        raise PluginError(f"aol_schema returned {item!r}; expected SQLAlchemy MetaData")


def _positional(impl: pluggy.HookImpl) -> Handler:
    """Call an implementation with just the arguments it accepts, without pluggy's loop.

    Unlike a pluggy hook call, arguments the implementation declares with a default
    (``context=None``) are passed too, by name: that is what its author meant.
    """
    function = impl.function
    picks = [HANDLE_ARGS.index(name) for name in impl.argnames]
    named = {name: HANDLE_ARGS.index(name) for name in impl.kwargnames if name in HANDLE_ARGS}

    def handler(*args: Any) -> Any:
        return function(*[args[i] for i in picks], **{k: args[i] for k, i in named.items()})

    return handler


def installed_catalog() -> PluginRegistry:
    """The plugins selected by the environment, loaded once per process per selection."""
    settings = Settings.from_env()
    return _catalog(settings.plugins, settings.disabled_plugins)


@functools.lru_cache(maxsize=8)
def _catalog(selected: tuple[str, ...] | None, disabled: tuple[str, ...]) -> PluginRegistry:
    return load_plugins(Settings(plugins=selected, disabled_plugins=disabled))


def forget_installed() -> None:
    """Drop the cached discovery (after installing plugins, or between tests)."""
    _catalog.cache_clear()
