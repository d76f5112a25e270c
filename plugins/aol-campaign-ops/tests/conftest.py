"""Fixtures for the aol-campaign-ops tests."""

from __future__ import annotations

import pytest
from aol_core.testing import ActionHarness

from aol_campaign_ops.testing import new_campaign


@pytest.fixture
def campaign_id(aol_harness: ActionHarness) -> int:
    return new_campaign(aol_harness)


@pytest.fixture
def aol_plugins() -> list[str]:
    """The kit's harness loads this plugin alone, whatever else is installed."""
    return ["aol-campaign-ops"]
