"""Creating, migrating and checking the schema: Alembic for AOL's tables and for each plugin's.

The core's revisions live in ``aol_core/migrations`` with the version table
``aol_alembic_version``. A plugin that implements ``aol_migrations`` has a chain of its own,
in its own directory, recorded in a version table of its own, so the chains never meet and
removing a plugin leaves every other table alone. A plugin with only ``aol_schema`` has its
missing tables created. ``upgrade`` does all of it in one transaction under the database's
schema lock, so several machines may run it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, MetaData, inspect, text

from aol_core.drivers import driver_for
from aol_core.errors import ForeignTables, PluginError, SchemaNotCurrent
from aol_core.models import Base
from aol_core.plugins import PluginInfo, PluginRegistry, canonical

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

VERSION_TABLE = "aol_alembic_version"
CORE = "aol-core"

#: the newest migration; a test checks it against Alembic's head, so commands that only
#: need to know whether the schema is current do not pay for importing Alembic
HEAD_REVISION = "0006"


@dataclass(frozen=True)
class Component:
    """The core or one plugin as ``aol db status`` shows it. ``current`` and ``head`` are
    revisions; for a plugin without migrations, ``missing`` lists its tables not yet created."""

    name: str
    current: str | None
    head: str | None
    migrations: bool = True
    missing: tuple[str, ...] = ()

    @property
    def behind(self) -> bool:
        return self.current != self.head or bool(self.missing)


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    if VERSION_TABLE not in inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        revision = conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return None if revision is None else str(revision)


def plugin_version_table(distribution: str) -> str:
    """Where a plugin's revision is recorded: ``acme-mail`` -> ``acme_mail_alembic_version``."""
    return canonical(distribution).replace("-", "_") + "_alembic_version"


@dataclass(frozen=True)
class _PluginSchema:
    plugin: PluginInfo
    metadata: list[MetaData]
    migrations: Path | None


def _plugin_schemas(registry: PluginRegistry) -> list[_PluginSchema]:
    found = []
    for plugin in registry.loaded:
        metadata: list[MetaData] = registry.call(plugin, "aol_schema")
        directories = [Path(found) for found in registry.call(plugin, "aol_migrations")]
        if metadata or directories:
            found.append(_PluginSchema(plugin, metadata, directories[0] if directories else None))
    return found


def _scripts(plugin: PluginInfo, directory: Path) -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    if not directory.is_dir():
        raise PluginError(f"plugin {plugin.label}: aol_migrations names {directory}, "
                          "which is not a directory")
    if plugin_version_table(plugin.distribution) == VERSION_TABLE:
        raise PluginError(f"plugin {plugin.label}: a distribution named "
                          f"{plugin.distribution} cannot ship migrations (its version table "
                          f"would be the core's {VERSION_TABLE}); rename the distribution")
    return ScriptDirectory(str(directory), version_locations=[str(directory)])


def upgrade(engine: Engine, registry: PluginRegistry | None = None) -> list[str]:
    """Bring AOL's tables and every loaded plugin's to their newest revision.

    Returns the names of the tables that did not exist before.
    """
    from alembic import command

    refuse_foreign_tables(engine)
    with engine.begin() as conn:
        driver_for(conn).lock_schema(conn)
        before = set(inspect(conn).get_table_names())
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        for found in _plugin_schemas(registry) if registry is not None else ():
            if found.migrations is None:
                for metadata in found.metadata:
                    metadata.create_all(conn, checkfirst=True)
            else:
                _upgrade_plugin(conn, found, found.migrations)
        created = sorted(set(inspect(conn).get_table_names()) - before)
    return created


def _upgrade_plugin(conn: Connection, found: _PluginSchema, directory: Path) -> None:
    from alembic.runtime.environment import EnvironmentContext

    script = _scripts(found.plugin, directory)
    table = plugin_version_table(found.plugin.distribution)

    def revisions(current: Any, _context: Any) -> Any:
        return script._upgrade_revs("heads", current)

    with EnvironmentContext(_config(), script, fn=revisions, destination_rev="heads") as env:
        env.configure(connection=conn, version_table=table,
                      render_as_batch=conn.dialect.name == "sqlite")
        if _adopt(conn, found, script, table):
            env.get_context().stamp(script, _base(found.plugin, script))
        with env.begin_transaction():
            env.run_migrations()


def _first_revision_tables(plugin: PluginInfo, script: ScriptDirectory,
                           dialect: str) -> frozenset[str]:
    """The tables the plugin's first revision creates: what ``aol_schema`` made before the
    plugin had migrations, so what a database made then holds.

    The plugin's current models cannot tell: a later revision that adds a table makes them
    name tables such a database never had. The first revision is therefore run in Alembic's
    offline (``as_sql``) mode on this database's dialect, its SQL rendered into a buffer that
    is thrown away, while the operations it invokes are noted (a table created, or dropped
    again): no database is touched, and the answer comes from the revision itself, whatever
    helpers it builds its tables with. A first revision that needs a connection (to inspect
    or to read rows) cannot be read so, and is refused naming why.
    """
    from io import StringIO

    from alembic.operations import Operations, ops
    from alembic.runtime.migration import MigrationContext

    created: set[str] = set()
    base = script.get_revision(_base(plugin, script))
    offline = MigrationContext.configure(
        dialect_name=dialect, opts={"as_sql": True, "output_buffer": StringIO()})
    try:
        with Operations.context(offline) as operations:
            render = operations.invoke

            def record(operation: ops.MigrateOperation) -> Any:
                if isinstance(operation, ops.CreateTableOp):
                    created.add(operation.table_name)
                elif isinstance(operation, ops.DropTableOp):
                    created.discard(operation.table_name)
                return render(operation)

            # Alembic's ``op`` proxy is bound to this instance and calls its ``invoke``
            # (a subclass would get no proxy), so the instance's own is the place to listen
            operations.invoke = record  # type: ignore[method-assign]
            base.module.upgrade()
    except Exception as exc:
        raise PluginError(f"plugin {plugin.label}: its first revision {base.revision} cannot "
                          f"be read without a database (it must only create tables): "
                          f"{exc}") from exc
    return frozenset(created)


def _unmigrated_tables_present(conn: Connection, found: _PluginSchema, table: str) -> bool:
    """Tables with the plugin's names in a database the plugin never migrated (no version
    table): to adopt, or to refuse as another system's. Only then is the first revision read."""
    existing = set(inspect(conn).get_table_names())
    tables = {name for metadata in found.metadata for name in metadata.tables}
    return table not in existing and bool(tables & existing)


def _adopt(conn: Connection, found: _PluginSchema, script: ScriptDirectory,
           table: str) -> bool:
    """Whether the plugin's tables are there from before it had migrations (made by
    ``aol_schema``), to be taken as its first revision rather than created again: no version
    table yet, and every table the first revision creates already there (tables of later
    revisions are then created by those).

    Some of the plugin's table names without all of the first revision's belong to another
    system (the original AICMO's ``campaign_ops_campaigns``, most likely): creating the rest
    would run the plugin on tables with other columns, so that is refused. The first revision
    is read only when tables with the plugin's names are there at all.
    """
    existing = set(inspect(conn).get_table_names())
    tables = {name for metadata in found.metadata for name in metadata.tables}
    if table in existing or not tables & existing:
        return False
    first = _first_revision_tables(found.plugin, script, conn.dialect.name)
    if not first or not first <= existing:
        raise ForeignTables(
            f"the database holds tables {found.plugin.distribution} did not create: "
            f"{', '.join(sorted((tables | first) & existing))}; to take over a database of "
            "the original AOL, run: aol db adopt"
        )
    return True


def _base(plugin: PluginInfo, script: ScriptDirectory) -> str:
    bases = script.get_bases()
    if len(bases) != 1:
        raise PluginError(f"plugin {plugin.label}: its migrations must start from one revision "
                          f"(down_revision = None), not {len(bases)}")
    return str(bases[0])


def status(engine: Engine, registry: PluginRegistry) -> list[Component]:
    """Each component's current and head revision (the core first, then plugins by name)."""
    from alembic.runtime.migration import MigrationContext

    components = [Component(CORE, current_revision(engine), HEAD_REVISION)]
    with engine.connect() as conn:
        existing = set(inspect(conn).get_table_names())
        for found in _plugin_schemas(registry):
            name = found.plugin.distribution
            if found.migrations is None:
                missing = sorted({t for m in found.metadata for t in m.tables} - existing)
                components.append(Component(name, None, None, False, tuple(missing)))
                continue
            script = _scripts(found.plugin, found.migrations)
            context = MigrationContext.configure(
                conn, opts={"version_table": plugin_version_table(name)})
            components.append(Component(name, _one(context.get_current_heads()),
                                        _one(script.get_heads())))
    return components


def _one(revisions: tuple[str, ...] | list[str]) -> str | None:
    return ",".join(sorted(revisions)) or None


def refuse_foreign_tables(engine: Engine) -> None:
    """AOL's table names in a database AOL never migrated belong to another system (the
    original AOL's ``aol_actions``, most likely): migrating would stop half-way on them."""
    present = set(inspect(engine).get_table_names())
    foreign = sorted(present & Base.metadata.tables.keys())
    if foreign and VERSION_TABLE not in present:
        raise ForeignTables(
            f"the database holds tables AOL did not create: {', '.join(foreign)}; "
            "to take over a database of the original AOL, run: aol db adopt"
        )


def require_current(engine: Engine, registry: PluginRegistry | None = None) -> None:
    """Refuse a database older than this code: the core's tables, and with ``registry``
    (a worker about to run those plugins) each plugin's too."""
    current, head = current_revision(engine), HEAD_REVISION
    if current != head:
        state = "has no AOL tables" if current is None else f"is at revision {current}, not {head}"
        raise SchemaNotCurrent(f"the database {state}; run: aol db upgrade")
    behind = [c.name for c in status(engine, registry)[1:] if c.behind] if registry else []
    if behind:
        raise SchemaNotCurrent(f"the tables of {', '.join(behind)} are not at the plugin's "
                               "newest revision; run: aol db upgrade")
