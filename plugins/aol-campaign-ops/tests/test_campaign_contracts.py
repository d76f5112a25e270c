"""The test kit's handler contract for each action type aol-campaign-ops declares (the same
classes ``aol plugins check`` runs, from aol_campaign_ops.contracts)."""

from __future__ import annotations

from aol_campaign_ops.contracts import (
    CampaignTickContract,
    EscalateOverdueTasksContract,
    SummarizeFinishedWeeksContract,
    TickActiveCampaignsContract,
    WeeklyCampaignSummaryContract,
)


class TestCampaignTickContract(CampaignTickContract):
    pass


class TestEscalateOverdueTasksContract(EscalateOverdueTasksContract):
    pass


class TestWeeklyCampaignSummaryContract(WeeklyCampaignSummaryContract):
    pass


class TestTickActiveCampaignsContract(TickActiveCampaignsContract):
    pass


class TestSummarizeFinishedWeeksContract(SummarizeFinishedWeeksContract):
    pass
