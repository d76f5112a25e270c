"""The calendar end to end, on SQLite and PostgreSQL: CAMPAIGN_TICK enqueues a due item as
POST_SOCIAL, a real in-process worker runs it with aol-social against its fake platforms on
loopback, and a later tick records on the item what became of the post.

aol-social is loaded beside this plugin here only: the plugin itself never imports it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aol_core import Action, Status, utcnow
from aol_core.testing import ActionHarness
from aol_core.worker import Worker, WorkerOptions
from aol_social.testing import FakeMastodon, FakeX, Reply, reply_json
from sqlalchemy import select

from aol_campaign_ops import CalendarItem, add_calendar_item
from aol_campaign_ops.testing import actions_of, tasks

MINUTE = timedelta(minutes=1)


@pytest.fixture
def aol_plugins() -> list[str]:
    return ["aol-campaign-ops", "aol-social"]


@pytest.fixture(autouse=True)
def social_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No account but the fakes this module starts; answers awaited briefly."""
    for name in list(os.environ):
        if name.startswith("AOL_SOCIAL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AOL_SOCIAL_TIMEOUT", "1.0")


@pytest.fixture
def mastodon(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMastodon]:
    with FakeMastodon() as fake:
        monkeypatch.setenv("AOL_SOCIAL_MASTODON_BASE_URL", fake.base_url)
        monkeypatch.setenv("AOL_SOCIAL_MASTODON_TOKEN", fake.token)
        yield fake


@pytest.fixture
def x(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeX]:
    with FakeX() as fake:
        monkeypatch.setenv("AOL_SOCIAL_X_BASE_URL", fake.base_url)
        monkeypatch.setenv("AOL_SOCIAL_X_TOKEN", fake.token)
        yield fake


def schedule(harness: ActionHarness, campaign_id: int, platform: str = "mastodon",
             content: str = "Spring is here.", due_in: timedelta = -MINUTE) -> int:
    with harness.session() as session:
        return add_calendar_item(session, campaign_id, platform, content,
                                 utcnow() + due_in).id


def tick_and_work(harness: ActionHarness, campaign_id: int) -> None:
    """Enqueue a tick and run a real worker until nothing is due (the posts it enqueues
    included)."""
    harness.enqueue("CAMPAIGN_TICK", {"campaign_id": campaign_id})
    Worker(harness.engine, harness.registry, harness.settings,
           WorkerOptions(name="calendar", burst=True)).run()


def item(harness: ActionHarness, item_id: int) -> CalendarItem:
    with harness.sessions() as session:
        found = session.get(CalendarItem, item_id)
        assert found is not None
        return found


def test_a_due_item_is_posted_to_mastodon_and_the_next_tick_records_its_url(
    aol_harness: ActionHarness, campaign_id: int, mastodon: FakeMastodon
) -> None:
    item_id = schedule(aol_harness, campaign_id, content="Spring is here.")

    tick_and_work(aol_harness, campaign_id)
    [post] = actions_of(aol_harness, "POST_SOCIAL")
    assert post.status == Status.SUCCESS, post.last_error
    assert post.idempotency_key == f"campaign-ops:post:{campaign_id}:{item_id}"
    assert item(aol_harness, item_id).status == "QUEUED"

    tick_and_work(aol_harness, campaign_id)
    published = item(aol_harness, item_id)
    [status] = mastodon.posts
    assert status["content"] == "Spring is here."
    assert (published.status, published.remote_url, published.outcome) == (
        "PUBLISHED", status["url"], None)
    assert len(actions_of(aol_harness, "POST_SOCIAL")) == 1
    assert [t.task_type for t in tasks(aol_harness, campaign_id)] == []


def test_an_item_not_yet_due_is_not_posted(
    aol_harness: ActionHarness, campaign_id: int, mastodon: FakeMastodon
) -> None:
    item_id = schedule(aol_harness, campaign_id, due_in=30 * MINUTE)

    tick_and_work(aol_harness, campaign_id)

    assert actions_of(aol_harness, "POST_SOCIAL") == []
    assert item(aol_harness, item_id).status == "SCHEDULED"
    assert mastodon.posts == []


def test_a_post_mastodon_refuses_fails_the_item_with_the_reason_and_asks_for_review(
    aol_harness: ActionHarness, campaign_id: int, mastodon: FakeMastodon
) -> None:
    mastodon.fail("/api/v1/statuses", reply_json(422, {"error": "Validation failed: spam"}))
    item_id = schedule(aol_harness, campaign_id)

    tick_and_work(aol_harness, campaign_id)
    tick_and_work(aol_harness, campaign_id)

    failed = item(aol_harness, item_id)
    assert failed.status == "FAILED" and failed.remote_url is None
    assert "HTTP 422: Validation failed: spam" in (failed.outcome or "")
    [review] = tasks(aol_harness, campaign_id)
    assert (review.task_type, review.status) == ("REVIEW", "PENDING")
    assert review.details["item_id"] == item_id
    assert "failed" in review.title


def test_a_held_post_holds_the_item_and_asks_for_review_once(
    aol_harness: ActionHarness, campaign_id: int, x: FakeX
) -> None:
    x.fail("/2/tweets", Reply(accept_then_hang=True))
    item_id = schedule(aol_harness, campaign_id, platform="x")

    for _ in range(3):
        tick_and_work(aol_harness, campaign_id)

    held = item(aol_harness, item_id)
    assert held.status == "HELD"
    assert "check the account's posts" in (held.outcome or "")
    [review] = tasks(aol_harness, campaign_id)
    assert review.details["status"] == "HELD"
    assert len(x.posts) == 1


def test_a_post_aol_social_refuses_at_enqueue_fails_the_item_not_the_tick(
    aol_harness: ActionHarness, campaign_id: int, mastodon: FakeMastodon
) -> None:
    too_long = schedule(aol_harness, campaign_id, content="x" * 501)
    fine = schedule(aol_harness, campaign_id)

    tick_and_work(aol_harness, campaign_id)

    [tick] = actions_of(aol_harness, "CAMPAIGN_TICK")
    assert tick.status == Status.SUCCESS, tick.last_error
    refused = item(aol_harness, too_long)
    assert refused.status == "FAILED"
    assert (refused.outcome or "").startswith("refused at enqueue: ")
    assert item(aol_harness, fine).status == "QUEUED"
    with aol_harness.sessions() as session:
        keys = session.scalars(select(Action.idempotency_key)
                               .where(Action.action_type == "POST_SOCIAL")).all()
    assert keys == [f"campaign-ops:post:{campaign_id}:{fine}"]
    [review] = tasks(aol_harness, campaign_id)
    assert review.details["item_id"] == too_long


def test_a_proof_mode_tick_lists_the_posts_it_would_enqueue_and_enqueues_none(
    aol_harness: ActionHarness, campaign_id: int
) -> None:
    item_id = schedule(aol_harness, campaign_id, content="Spring is here.")

    tick = aol_harness.run("CAMPAIGN_TICK", {"campaign_id": campaign_id}, proof_mode=True)

    assert tick.status == Status.SUCCESS, tick.last_error
    [artifact] = aol_harness.artifacts(tick.id)
    [would] = json.loads(artifact.content)["would_enqueue_posts"]
    assert (would["idempotency_key"], would["payload"]) == (
        f"campaign-ops:post:{campaign_id}:{item_id}",
        {"social_platform": "mastodon", "content": "Spring is here."})
    assert actions_of(aol_harness, "POST_SOCIAL") == []
    assert item(aol_harness, item_id).status == "SCHEDULED"
