"""The test kit's handler contract, for each action type aol-campaign-ops declares."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from aol_core.testing import ActionHarness, HandlerContract

from aol_campaign_ops.testing import new_campaign


class CampaignContract(HandlerContract):
    """Every campaign action names a campaign, so the contract's 'valid payload' (campaign 1)
    needs that campaign to exist: this fixture creates it before each inherited test."""

    @pytest.fixture(autouse=True)
    def _campaign_1(self, aol_harness: ActionHarness) -> None:
        assert new_campaign(aol_harness, "Contract campaign") == 1


class TestCampaignTickContract(CampaignContract):
    action_type = "CAMPAIGN_TICK"
    valid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1}
    invalid_payload: ClassVar[dict[str, Any]] = {"campaign_id": "one"}


class TestEscalateOverdueTasksContract(CampaignContract):
    action_type = "ESCALATE_OVERDUE_TASKS"
    valid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1}
    invalid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1, "task_ids": [1, 2]}


class TestWeeklyCampaignSummaryContract(CampaignContract):
    action_type = "WEEKLY_CAMPAIGN_SUMMARY"
    valid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1, "week_start": "2026-03-02"}
    invalid_payload: ClassVar[dict[str, Any]] = {"campaign_id": 1, "week_start": "last Monday"}


class TestTickActiveCampaignsContract(CampaignContract):
    action_type = "TICK_ACTIVE_CAMPAIGNS"
    valid_payload: ClassVar[dict[str, Any]] = {"slot": "2030-01-07T09:15:00+00:00"}
    invalid_payload: ClassVar[dict[str, Any]] = {"slot": "now"}


class TestSummarizeFinishedWeeksContract(CampaignContract):
    action_type = "SUMMARIZE_FINISHED_WEEKS"
    valid_payload: ClassVar[dict[str, Any]] = {"slot": "2030-01-07T09:15:00+00:00"}
    invalid_payload: ClassVar[dict[str, Any]] = {"slot": "2030-01-07T09:15:00"}
