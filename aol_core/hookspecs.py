"""Every hook a plugin can implement. Each docstring here is that hook's documentation.

Plugins are found through the ``aicmo.actions`` entry point group and mark their
implementations with :data:`aol_core.hookimpl`. An implementation may accept any subset of
a hook's arguments, so hooks gain arguments without breaking existing plugins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from sqlalchemy import Connection, MetaData
    from sqlalchemy.orm import Session

    from aol_core.adopt import AdoptionReport
    from aol_core.cli.plugin_commands import PluginCommands
    from aol_core.context import ActionContext
    from aol_core.schedules import Schedule
    from aol_core.specs import ActionSpec
    from aol_core.testing import HandlerContract

PROJECT_NAME = "aicmo"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def aol_register_actions() -> Iterable[str | ActionSpec]:
    """Declare the action types this plugin handles, as names or :class:`ActionSpec` objects.

    The worker builds its routing table from these declarations at start-up and sends each
    action only to the plugin that declared its type. Two distributions declaring one type
    stop the worker with an error naming both.
    """


@hookspec
def handle_action(
    action_type: str,
    session: Session,
    payload: dict[str, Any],
    proof_mode: bool,
    context: ActionContext,
) -> Any:
    """Run one action and return its result (anything JSON can hold, or None).

    ``session`` is open in a transaction: the handler's writes commit together with the
    action's SUCCESS, and roll back if the handler raises. ``payload`` carries the action's
    ``idempotency_key``. ``proof_mode`` True means: touch nothing outside, record what would
    have happened (``context.record_artifact``). ``context`` (optional to accept) gives the
    action id, the attempt number, logging and artifacts. Raise ``PermanentError`` for
    failures a retry cannot fix, ``RetryableError`` (or anything else) to retry with backoff.
    """


@hookspec
def aol_schema() -> MetaData:
    """Return SQLAlchemy ``MetaData`` holding the tables this plugin owns.

    ``aol db upgrade`` creates those that do not exist yet, unless the plugin ships
    migrations (``aol_migrations``), which then create and evolve them; ``aol plugins`` and
    ``aol plugins check`` name them either way. Name them with a prefix of the plugin's own
    so they never collide with another plugin's.
    """


@hookspec
def aol_example_actions(session: Session) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """Return example ``(action_type, payload)`` pairs for ``aol demo`` and ``aol plugins
    check`` (which runs each in proof mode on an empty database): one per declared type.

    May insert rows the examples need into the plugin's own tables through ``session``.
    """


@hookspec
def aol_handler_contracts() -> Iterable[type[HandlerContract]]:
    """Return this plugin's :class:`aol_core.testing.HandlerContract` subclasses (plugin API
    1.1), so ``aol plugins check`` runs their payloads too: each contract's ``valid_payload``
    in proof mode (after its ``prepare``), its ``invalid_payload``, and its
    ``permanent_failure_payload`` and ``retryable_failure_payload``, which show that the
    handler classifies its errors. Keep the classes in the package (not only in its tests)
    and subclass each in a test module, so pytest runs the same contract::

        # src/acme_mail/contracts.py
        class SendMailContract(HandlerContract):
            action_type = "SEND_MAIL"
            ...

        # src/acme_mail/plugin.py
        @hookimpl
        def aol_handler_contracts():
            return [SendMailContract]

        # tests/test_contracts.py
        class TestSendMailContract(SendMailContract):
            pass  # the contract aol plugins check runs, run by pytest as well
    """


@hookspec
def aol_adopt_legacy(connection: Connection, report: AdoptionReport) -> None:
    """Take over this plugin's tables from the original application (``aol db adopt``).

    Called inside adoption's one transaction, after AOL's own tables are in place: find the
    original's tables that collide with or precede yours (tell them by a column only they
    have), move them aside, create your tables, copy what carries over and say what you did
    through ``report``. ``aol_core.adopt`` has the helpers; ``insert_keeping_ids`` keeps the
    ids that adopted payloads refer to. Never commit; raise to abort the whole adoption.
    Finding nothing of the original's, do nothing: adoption runs again safely, and a dry run
    rolls everything back. For example::

        from aol_core.adopt import has_column, insert_keeping_ids, move_aside
        from aol_core.compat import as_utc

        @hookimpl
        def aol_adopt_legacy(connection, report):
            if not has_column(connection, "acme_mail_log", "sent_at_utc"):
                return  # absent, or ours already: nothing to adopt
            old = move_aside(connection, "acme_mail_log", report)
            metadata.create_all(connection)
            rows = [{"id": r.id, "sent_at": as_utc(r.sent_at_utc)}
                    for r in connection.execute(select(old))]
            insert_keeping_ids(connection, mail_log, rows)
            report.copied_rows("mail log entries", len(rows))
    """


@hookspec
def aol_api_version() -> str:
    """Return the plugin API version (``"major.minor"``) this plugin was written against.

    Return the value of ``aol_core.PLUGIN_API_VERSION`` you developed with, as a literal.
    A plugin targeting another major version is refused at load (like a broken plugin,
    naming both versions); a newer minor loads with a warning. A plugin without this hook
    targets ``"1.0"``.
    """


@hookspec
def aol_schedules() -> Iterable[Schedule]:
    """Declare periodic actions, as :class:`aol_core.Schedule` objects.

    Every running worker that runs the schedule's action type ticks it; each slot is
    enqueued exactly once across all of them. ``{slot}`` in a payload string becomes the
    slot's local time (ISO 8601), so the action knows which period it is for::

        @hookimpl
        def aol_schedules():
            return [
                Schedule("weekly-summary", "CAMPAIGN_SUMMARY", cron="0 8 * * mon",
                         timezone="Europe/Berlin", payload={"week_of": "{slot}"}),
                Schedule("campaign-tick", "CAMPAIGN_TICK", every=timedelta(minutes=5),
                         catch_up="skip"),
            ]

    Operators may pause and resume these (``aol schedules pause NAME``), not remove them.
    A name two plugins declare stops the worker with an error naming both.
    """


@hookspec
def aol_migrations() -> str | Path:
    """Return the directory holding this plugin's Alembic revision files.

    ``aol db upgrade`` applies them after the core's, in the same locked transaction, and
    records the plugin's revision in a version table of its own (``<distribution>_alembic_
    version``), so plugins evolve their tables independently and removing one never touches
    another's. Revisions of the plugin's first release have ``down_revision = None``. A
    plugin with migrations has its ``aol_schema`` tables created by them only.
    """


@hookspec
def aol_register_commands(commands: PluginCommands) -> None:
    """Add subcommands to ``aol``: ``commands.add_parser(name, help=...)`` as in argparse.

    Give each parser a handler with ``set_defaults(handler=run)``; ``run(ctx, args)``
    receives an ``aol_core.cli.Context`` (``ctx.settings``, ``ctx.engine``,
    ``ctx.sessions``, ``ctx.registry``) and returns the exit code. ``aol --db URL`` and
    ``--log-level`` work as for every command; raising ``aol_core.AOLError`` prints one line
    and exits 1. A name the core or another plugin already uses is refused.
    """
