"""Fixtures for the aol-campaign-ops tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aol_core.testing import ActionHarness

from aol_campaign_ops.mail_testing import Inbox, smtp_inbox
from aol_campaign_ops.testing import new_campaign


@pytest.fixture
def campaign_id(aol_harness: ActionHarness) -> int:
    return new_campaign(aol_harness)


@pytest.fixture
def aol_plugins() -> list[str]:
    """The kit's harness loads this plugin alone, whatever else is installed."""
    return ["aol-campaign-ops"]


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A real SMTP server on loopback, configured as the plugin's server."""
    with smtp_inbox() as (inbox, port):
        monkeypatch.setenv("AOL_SMTP_URL", f"smtp://127.0.0.1:{port}")
        monkeypatch.setenv("AOL_SMTP_FROM", "aol@example.com")
        yield inbox
