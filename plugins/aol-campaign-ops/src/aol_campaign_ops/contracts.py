"""The test kit's handler contract for each action type aol-campaign-ops declares: run by
pytest (tests/test_campaign_contracts.py) and by ``aol plugins check`` (through the
``aol_handler_contracts`` hook)."""

from __future__ import annotations

from typing import Any, ClassVar

from aol_core.testing import ActionHarness, HandlerContract

from aol_campaign_ops.api import (
    CAMPAIGN_TICK,
    ESCALATE_OVERDUE_TASKS,
    SUMMARIZE_FINISHED_WEEKS,
    TICK_ACTIVE_CAMPAIGNS,
    WEEKLY_CAMPAIGN_SUMMARY,
)
from aol_campaign_ops.testing import new_campaign


class CampaignContract(HandlerContract):
    """Every campaign action names a campaign: the valid payloads name campaign 1, which
    ``prepare`` creates; campaign 999 never exists, a failure no retry can fix."""

    permanent_failure_payload: ClassVar[dict[str, Any] | None] = {"campaign_id": 999}

    def prepare(self, harness: ActionHarness) -> None:
        assert new_campaign(harness, "Contract campaign") == 1


class CampaignTickContract(CampaignContract):
    action_type = CAMPAIGN_TICK
    valid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1}
    invalid_payload: ClassVar[dict[str, Any]] = {"campaign_id": "one"}


class EscalateOverdueTasksContract(CampaignContract):
    action_type = ESCALATE_OVERDUE_TASKS
    valid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1}
    invalid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1, "task_ids": [1, 2]}


class WeeklyCampaignSummaryContract(CampaignContract):
    action_type = WEEKLY_CAMPAIGN_SUMMARY
    valid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1, "week_start": "2026-03-02"}
    invalid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1, "week_start": "last Monday"}
    permanent_failure_payload: ClassVar[dict[str, Any] | None] = {
        "campaign_id": 999, "week_start": "2026-03-02"}


class SlotContract(CampaignContract):
    """The schedules' fan-out actions name a slot, not a campaign: nothing they are given
    can fail for good, so they declare no permanent failure."""

    permanent_failure_payload: ClassVar[dict[str, Any] | None] = None


class TickActiveCampaignsContract(SlotContract):
    action_type = TICK_ACTIVE_CAMPAIGNS
    valid_payload: ClassVar[dict[str, Any]] = {"slot": "2030-01-07T09:15:00+00:00"}
    invalid_payload: ClassVar[dict[str, Any]] = {"slot": "now"}


class SummarizeFinishedWeeksContract(SlotContract):
    action_type = SUMMARIZE_FINISHED_WEEKS
    valid_payload: ClassVar[dict[str, Any]] = {"slot": "2030-01-07T09:15:00+00:00"}
    invalid_payload: ClassVar[dict[str, Any]] = {"slot": "2030-01-07T09:15:00"}


CONTRACTS: list[type[HandlerContract]] = [
    CampaignTickContract, EscalateOverdueTasksContract, WeeklyCampaignSummaryContract,
    TickActiveCampaignsContract, SummarizeFinishedWeeksContract]
