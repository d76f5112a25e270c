"""ESCALATE_OVERDUE_TASKS e-mails the campaign's owner: sent to a real SMTP server on loopback
(aiosmtpd, the ``smtp_server`` fixture), recorded as ``.eml`` in proof mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness, FixedClock, NetworkGuard

from aol_campaign_ops import create_campaign
from aol_campaign_ops.mail_testing import Inbox
from aol_campaign_ops.testing import as_dict, new_task, task, tasks

LATE = datetime(2030, 1, 7, 7, 30, tzinfo=UTC)  # 08:30 in Berlin, before the kit's 09:00 UTC


@pytest.fixture
def owned_campaign(aol_harness: ActionHarness) -> int:
    with aol_harness.session() as session:
        return create_campaign(session, "Spring launch", owner_email="owner@example.com",
                               timezone="Europe/Berlin").id


def escalate(harness: ActionHarness, campaign_id: int, **options: object) -> int:
    return harness.enqueue("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id},
                           **options)  # type: ignore[arg-type]


def reviews(harness: ActionHarness, campaign_id: int) -> list[int]:
    return [t.id for t in tasks(harness, campaign_id) if t.task_type == "REVIEW"]


@pytest.mark.usefixtures("aol_clock")
def test_the_owner_gets_one_message_listing_the_overdue_tasks(
    aol_harness: ActionHarness, smtp_server: Inbox, owned_campaign: int
) -> None:
    new_task(aol_harness, owned_campaign, "Post the teaser", due_at=LATE, status="OVERDUE")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": owned_campaign})

    assert action.status == Status.SUCCESS, action.last_error
    [message] = smtp_server.messages
    assert message["From"] == "aol@example.com"
    assert message["To"] == "owner@example.com"
    assert message["Subject"] == "[Spring launch] 1 overdue task(s) need a person"
    assert message["Message-ID"] == f"<campaign-ops.escalation.{action.id}@example.com>"
    body = message.get_content()
    assert "- Post the teaser (due 2030-01-07 08:30 CET)" in body
    assert f"aol campaigns show {owned_campaign}" in body
    assert as_dict(action.result)["mailed"] == {
        "to": "owner@example.com", "message_id": message["Message-ID"]}
    assert len(reviews(aol_harness, owned_campaign)) == 1


def test_running_the_escalation_again_sends_nothing_more(
    aol_harness: ActionHarness, smtp_server: Inbox, owned_campaign: int
) -> None:
    new_task(aol_harness, owned_campaign, "late", due_at=LATE, status="OVERDUE")
    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": owned_campaign})

    aol_harness.rerun(action.id)

    assert len(smtp_server.messages) == 1
    assert len(reviews(aol_harness, owned_campaign)) == 1


def test_a_4xx_reply_retries_and_the_retry_sends_under_the_same_message_id(
    aol_harness: ActionHarness, smtp_server: Inbox, owned_campaign: int, aol_clock: FixedClock
) -> None:
    late = new_task(aol_harness, owned_campaign, "late", due_at=LATE, status="OVERDUE")
    smtp_server.refuse_next("451 4.3.0 mailbox busy, try later")
    action_id = escalate(aol_harness, owned_campaign, max_attempts=3)

    aol_harness.run_due()
    waiting = aol_harness.action(action_id)
    assert waiting.status == Status.RETRY
    assert "replied 451 4.3.0 mailbox busy" in (waiting.last_error or "")
    assert (reviews(aol_harness, owned_campaign), task(aol_harness, late).escalated_at) == (
        [], None)

    aol_clock.advance(timedelta(hours=1))
    aol_harness.run_due()

    assert aol_harness.action(action_id).status == Status.SUCCESS
    [message] = smtp_server.messages
    assert message["Message-ID"] == f"<campaign-ops.escalation.{action_id}@example.com>"
    assert len(reviews(aol_harness, owned_campaign)) == 1


def test_a_5xx_reply_fails_permanently_naming_the_reply(
    aol_harness: ActionHarness, smtp_server: Inbox, owned_campaign: int
) -> None:
    late = new_task(aol_harness, owned_campaign, "late", due_at=LATE, status="OVERDUE")
    smtp_server.refuse_next("550 5.1.1 no such user")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": owned_campaign},
                             max_attempts=5)

    assert (action.status, action.attempts) == (Status.FAILED, 1)
    assert "replied 550 5.1.1 no such user" in (action.last_error or "")
    assert (reviews(aol_harness, owned_campaign), task(aol_harness, late).escalated_at) == (
        [], None)


def test_a_password_is_never_sent_over_a_connection_without_starttls_nor_shown(
    aol_harness: ActionHarness, smtp_server: Inbox, owned_campaign: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    plain = os.environ["AOL_SMTP_URL"].replace("smtp://", "smtp://mailer:s3cret-pass@")
    monkeypatch.setenv("AOL_SMTP_URL", plain)
    new_task(aol_harness, owned_campaign, "late", due_at=LATE, status="OVERDUE")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": owned_campaign})

    assert action.status == Status.FAILED
    assert "offers no STARTTLS" in (action.last_error or "")
    shown = [action.last_error, str(action.result)] + [
        log.message for log in aol_harness.logs(action.id)]
    assert not any("s3cret-pass" in (text or "") for text in shown)
    assert smtp_server.messages == []


def test_without_an_owner_the_review_task_is_made_and_nothing_is_sent(
    aol_harness: ActionHarness, smtp_server: Inbox, campaign_id: int
) -> None:
    new_task(aol_harness, campaign_id, "late", due_at=LATE, status="OVERDUE")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": campaign_id})

    assert as_dict(action.result)["mailed"] is None
    assert smtp_server.messages == []
    assert len(reviews(aol_harness, campaign_id)) == 1
    assert any("no owner e-mail" in log.message for log in aol_harness.logs(action.id))


def test_without_smtp_configured_the_review_task_is_made_and_the_log_says_why(
    aol_harness: ActionHarness, owned_campaign: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AOL_SMTP_URL", raising=False)
    new_task(aol_harness, owned_campaign, "late", due_at=LATE, status="OVERDUE")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": owned_campaign})

    assert action.status == Status.SUCCESS
    assert len(reviews(aol_harness, owned_campaign)) == 1
    assert any("AOL_SMTP_URL is not set" in log.message for log in aol_harness.logs(action.id))


def test_proof_mode_records_the_exact_message_and_opens_no_connection(
    aol_harness: ActionHarness, owned_campaign: int, monkeypatch: pytest.MonkeyPatch,
    aol_no_network: NetworkGuard,
) -> None:
    monkeypatch.setenv("AOL_SMTP_FROM", "aol@example.com")
    new_task(aol_harness, owned_campaign, "Post the teaser", due_at=LATE, status="OVERDUE")

    action = aol_harness.run("ESCALATE_OVERDUE_TASKS", {"campaign_id": owned_campaign},
                             proof_mode=True)

    eml = next(a for a in aol_harness.artifacts(action.id) if a.name == "escalation.eml")
    assert eml.media_type == "message/rfc822"
    message = message_from_bytes(eml.content, policy=default)
    assert (message["To"], message["Message-ID"]) == (
        "owner@example.com", f"<campaign-ops.escalation.{action.id}@example.com>")
    assert "Post the teaser" in message.get_content()  # type: ignore[attr-defined]
    assert reviews(aol_harness, owned_campaign) == []
