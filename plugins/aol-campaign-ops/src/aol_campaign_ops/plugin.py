"""The hook implementations AOL finds through the ``aicmo.actions`` entry point."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aol_core import ActionContext, ActionSpec, PermanentError, Schedule, hookimpl
from aol_core.adopt import AdoptionReport
from aol_core.cli.plugin_commands import PluginCommands
from aol_core.testing import HandlerContract
from sqlalchemy import Connection, MetaData
from sqlalchemy.orm import Session

from aol_campaign_ops import commands as campaign_commands
from aol_campaign_ops import demo, legacy
from aol_campaign_ops.api import (
    CAMPAIGN_TICK,
    ESCALATE_OVERDUE_TASKS,
    SUMMARIZE_FINISHED_WEEKS,
    TICK_ACTIVE_CAMPAIGNS,
    WEEKLY_CAMPAIGN_SUMMARY,
)
from aol_campaign_ops.contracts import CONTRACTS
from aol_campaign_ops.escalation import escalate_overdue_tasks
from aol_campaign_ops.models import metadata
from aol_campaign_ops.schedules import (
    declared_schedules,
    summarize_finished_weeks,
    tick_active_campaigns,
)
from aol_campaign_ops.summary import weekly_summary
from aol_campaign_ops.tick import campaign_tick

CAMPAIGN_ID: dict[str, Any] = {"type": "integer", "minimum": 1}
#: a schedule's slot, as the core fills in ``{slot}``: ISO 8601 with its UTC offset
SLOT: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$",
}


#: a day; the original's callers sent it as midnight UTC in ISO 8601 (a legacy form)
WEEK_START: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}(T00:00(:00(\.0+)?)?(Z|[+-]00:?00)?)?$",
}


def _schema(
    legacy: dict[str, dict[str, Any]] | None = None, **properties: dict[str, Any]
) -> dict[str, Any]:
    """Exactly ``properties``, all required; ``legacy`` names fields the original
    application's callers sent, accepted and ignored (README: legacy forms)."""
    return {
        "type": "object",
        "properties": {**properties, **(legacy or {})},
        "required": sorted(properties),
        "additionalProperties": False,
    }


SPECS = [
    ActionSpec(
        CAMPAIGN_TICK,
        "Mark a campaign's tasks DUE or OVERDUE and enqueue an escalation of overdue ones",
        payload_schema=_schema(campaign_id=CAMPAIGN_ID),
    ),
    ActionSpec(
        ESCALATE_OVERDUE_TASKS,
        "Create one REVIEW task (no deadline) listing a campaign's unescalated overdue tasks",
        payload_schema=_schema(
            legacy={"task_count": {"type": "integer", "minimum": 0}}, campaign_id=CAMPAIGN_ID
        ),
    ),
    ActionSpec(
        WEEKLY_CAMPAIGN_SUMMARY,
        "Summarize a campaign's week (tasks, metrics by platform) into an audit row and "
        "an ANALYZE task",
        payload_schema=_schema(
            campaign_id=CAMPAIGN_ID,
            week_start=WEEK_START,
        ),
    ),
    ActionSpec(
        TICK_ACTIVE_CAMPAIGNS,
        "Enqueue a CAMPAIGN_TICK for each active campaign (run by the campaign-ops-tick "
        "schedule)",
        payload_schema=_schema(slot=SLOT),
        share_transaction=True,
    ),
    ActionSpec(
        SUMMARIZE_FINISHED_WEEKS,
        "Enqueue the WEEKLY_CAMPAIGN_SUMMARY of each campaign whose Monday 09:00 has come "
        "(run by the campaign-ops-weekly-summaries schedule)",
        payload_schema=_schema(slot=SLOT),
        share_transaction=True,
    ),
]

Handler = Callable[[Session, Mapping[str, Any], bool, ActionContext], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    CAMPAIGN_TICK: campaign_tick,
    ESCALATE_OVERDUE_TASKS: escalate_overdue_tasks,
    WEEKLY_CAMPAIGN_SUMMARY: weekly_summary,
    TICK_ACTIVE_CAMPAIGNS: tick_active_campaigns,
    SUMMARIZE_FINISHED_WEEKS: summarize_finished_weeks,
}


@hookimpl
def aol_register_actions() -> list[ActionSpec]:
    return list(SPECS)


@hookimpl
def handle_action(
    action_type: str,
    session: Session,
    payload: dict[str, Any],
    proof_mode: bool,
    context: ActionContext,
) -> dict[str, Any]:
    handler = HANDLERS.get(action_type)
    if handler is None:
        raise PermanentError(f"aol-campaign-ops does not handle {action_type}")
    return handler(session, payload, proof_mode, context)


@hookimpl
def aol_register_commands(commands: PluginCommands) -> None:
    campaign_commands.register(commands)


@hookimpl
def aol_schedules() -> list[Schedule]:
    return declared_schedules()


@hookimpl
def aol_api_version() -> str:
    return "1.1"


@hookimpl
def aol_schema() -> MetaData:
    return metadata


@hookimpl
def aol_adopt_legacy(connection: Connection, report: AdoptionReport) -> None:
    legacy.adopt_legacy(connection, report)


@hookimpl
def aol_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def aol_handler_contracts() -> list[type[HandlerContract]]:
    return CONTRACTS


@hookimpl
def aol_example_actions(session: Session) -> list[tuple[str, Mapping[str, Any]]]:
    return demo.example_actions(session)
