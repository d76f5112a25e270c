"""The weekly report people open: HTML (with its chart) and Markdown stored as artifacts, and
the HTML e-mailed to the owner through a real SMTP server on loopback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aol_core import Status
from aol_core.testing import ActionHarness

from aol_campaign_ops import add_calendar_item, create_campaign, record_metric
from aol_campaign_ops.mail_testing import Inbox
from aol_campaign_ops.testing import as_dict, tasks

WEEK = {"week_start": "2029-12-31"}
WEDNESDAY = datetime(2030, 1, 2, 12, tzinfo=UTC)


@pytest.fixture
def reported(aol_harness: ActionHarness) -> int:
    """A campaign with an owner and a week of metrics on two platforms."""
    with aol_harness.session() as session:
        campaign = create_campaign(session, "Spring <launch>", owner_email="owner@example.com",
                                   timezone="Europe/Berlin")
        for platform, engagement, clicks in (("linkedin", 60, 75), ("x", 85, 40)):
            record_metric(session, campaign.id, platform, impressions=900,
                          engagement=engagement, clicks=clicks, recorded_at=WEDNESDAY)
        return campaign.id


def summarize(harness: ActionHarness, campaign_id: int, **options: object) -> int:
    action = harness.run("WEEKLY_CAMPAIGN_SUMMARY", {"campaign_id": campaign_id, **WEEK},
                         **options)  # type: ignore[arg-type]
    return action.id


def artifact(harness: ActionHarness, action_id: int, name: str) -> str:
    found = next(a for a in harness.artifacts(action_id) if a.name == name)
    return found.content.decode()


def test_the_html_report_shows_the_numbers_and_a_bar_per_platform_and_measure(
    aol_harness: ActionHarness, reported: int
) -> None:
    action_id = summarize(aol_harness, reported)

    page = artifact(aol_harness, action_id, "report.html")
    assert "<h1>Spring &lt;launch&gt;: week of 2029-12-31</h1>" in page
    assert "in Europe/Berlin" in page
    assert "<td>linkedin</td><td>1</td><td>900</td><td>60</td><td>75</td>" in page
    assert page.count("<rect ") == 2 * 2 + 2  # two bars per platform, two legend keys
    assert "<title>x clicks: 40</title>" in page
    assert "Top platform (engagement + clicks): <strong>linkedin</strong>" in page


def test_the_markdown_report_has_the_same_numbers(
    aol_harness: ActionHarness, reported: int
) -> None:
    action_id = summarize(aol_harness, reported)

    text = artifact(aol_harness, action_id, "report.md")
    assert text.startswith("# Spring <launch>: week of 2029-12-31\n")
    assert "| linkedin | 1 | 900 | 60 | 75 |" in text
    assert "| x | 1 | 900 | 85 | 40 |" in text
    assert "**linkedin**" in text


def test_a_week_without_metrics_says_so_instead_of_drawing_an_empty_chart(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    action_id = summarize(aol_harness, campaign_id)

    assert "No metrics were recorded this week." in artifact(aol_harness, action_id,
                                                             "report.html")
    assert "<svg" not in artifact(aol_harness, action_id, "report.html")


def test_the_owner_gets_the_html_report_with_the_markdown_as_plain_text(
    aol_harness: ActionHarness, reported: int, smtp_server: Inbox
) -> None:
    action_id = summarize(aol_harness, reported)

    [message] = smtp_server.messages
    assert message["To"] == "owner@example.com"
    assert message["Subject"] == "Weekly report: Spring <launch>: week of 2029-12-31"
    assert message["Message-ID"] == f"<campaign-ops.weekly-report.{action_id}@example.com>"
    html_part = message.get_body(("html",))
    text_part = message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    # SMTP carries lines ending in CRLF
    assert html_part.get_content().replace("\r\n", "\n") == artifact(
        aol_harness, action_id, "report.html")
    assert text_part.get_content().replace("\r\n", "\n") == artifact(
        aol_harness, action_id, "report.md")


def test_an_unchanged_week_is_not_mailed_again_and_a_changed_one_is(
    aol_harness: ActionHarness, reported: int, smtp_server: Inbox
) -> None:
    summarize(aol_harness, reported, idempotency_key="first")
    unchanged = summarize(aol_harness, reported, idempotency_key="again")
    assert len(smtp_server.messages) == 1
    assert as_dict(aol_harness.action(unchanged).result)["mailed"] is None

    with aol_harness.session() as session:
        record_metric(session, reported, "x", clicks=5, recorded_at=WEDNESDAY)
    summarize(aol_harness, reported, idempotency_key="late metrics")

    assert len(smtp_server.messages) == 2
    assert "| x | 2 | 900 | 85 | 45 |" in smtp_server.messages[1].get_body(
        ("plain",)).get_content()  # type: ignore[union-attr]


def test_a_refused_report_mail_fails_the_summary_and_writes_nothing(
    aol_harness: ActionHarness, reported: int, smtp_server: Inbox
) -> None:
    smtp_server.refuse_next("550 5.7.1 relaying denied")

    action = aol_harness.action(summarize(aol_harness, reported, max_attempts=5))

    assert (action.status, action.attempts) == (Status.FAILED, 1)
    assert "replied 550 5.7.1 relaying denied" in (action.last_error or "")
    assert [t for t in tasks(aol_harness, reported) if t.task_type == "ANALYZE"] == []


def test_the_report_lists_the_posts_published_that_week_with_their_links(
    aol_harness: ActionHarness, reported: int
) -> None:
    """Only a post recorded as published counts; one still scheduled, or of another week,
    does not."""
    with aol_harness.session() as session:
        for content, at, url in (
            ("Doors open <today>", WEDNESDAY, "https://social.example/@brand/1"),
            ("Not out yet", WEDNESDAY, None),
            ("Next week", datetime(2030, 1, 9, 12, tzinfo=UTC), "https://social.example/@b/2"),
        ):
            item = add_calendar_item(session, reported, "mastodon", content, at)
            if url is not None:
                item.status, item.remote_url = "PUBLISHED", url

    action = aol_harness.action(summarize(aol_harness, reported))

    [post] = as_dict(action.result)["posts_published"]
    assert (post["publish_at"], post["url"]) == (
        "2030-01-02T13:00:00+01:00", "https://social.example/@brand/1")
    page = artifact(aol_harness, action.id, "report.html")
    assert "<h2>Posts published: 1</h2>" in page
    assert ('<a href="https://social.example/@brand/1">Doors open &lt;today&gt;</a>'
            in page)
    assert ("- 2030-01-02T13:00:00+01:00 mastodon: "
            "[Doors open <today>](https://social.example/@brand/1)"
            in artifact(aol_harness, action.id, "report.md"))
