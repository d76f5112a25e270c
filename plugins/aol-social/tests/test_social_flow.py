"""Per-account flow control, through a real worker on SQLite and PostgreSQL: one account's
posts never overlap (a concurrency cap of 1 per account), another account's post goes out
meanwhile, and a rate limit holds per account; an operator tunes both with ``aol limits``.

Observed through the fakes and the actions table, never through timing: the first account's
instance holds its answer until the test opens its gate, so a second post of that account could
only arrive while the first is in flight if the cap did not hold."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aol_core import Status
from aol_core.cli import main as aol
from aol_core.testing import ActionHarness
from aol_core.worker import Worker, WorkerOptions

from aol_social.testing import FakeMastodon, Received, Reply

#: generous: the machine is shared and busy
DEADLINE_SECONDS = 60


class GatedMastodon(FakeMastodon):
    """Creates each status at once but holds its answer until ``released`` is set, and notes
    for each status whether the gate was already open when it arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived_after_release: list[bool] = []

    def handle(self, request: Received) -> Reply:
        reply = super().handle(request)
        if request.path != "/api/v1/statuses":
            return reply
        self.arrived_after_release.append(self.released.is_set())
        return dataclasses.replace(reply, delay=DEADLINE_SECONDS * 10)


@pytest.fixture
def brands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[GatedMastodon, FakeMastodon]]:
    """Two named Mastodon accounts: ``brand-a`` on a gated instance, ``brand-b`` on another."""
    with GatedMastodon() as gated, FakeMastodon() as other:
        path = tmp_path / "accounts.toml"
        path.write_text("".join(
            f'[accounts.{name}]\nprovider = "mastodon"\nbase_url = "{fake.base_url}"\n'
            'token_env = "BRAND_TOKEN"\n' for name, fake in (("brand-a", gated),
                                                            ("brand-b", other))))
        monkeypatch.setenv("AOL_SOCIAL_ACCOUNTS_FILE", str(path))
        monkeypatch.setenv("BRAND_TOKEN", gated.token)
        monkeypatch.setenv("AOL_SOCIAL_TIMEOUT", str(DEADLINE_SECONDS * 2))  # the gate is slow
        yield gated, other


def post(harness: ActionHarness, account: str, content: str) -> int:
    return harness.enqueue("POST_SOCIAL", {"social_platform": "mastodon", "content": content,
                                           "account": account})


def start_worker(harness: ActionHarness) -> tuple[Worker, threading.Thread]:
    """A burst worker with room for three posts at once, running until nothing is due."""
    worker = Worker(harness.engine, harness.registry, harness.settings,
                    WorkerOptions(name="flow", concurrency=3, burst=True))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return worker, thread


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_aol_limits_shows_the_per_account_limits_the_plugin_declares(
    aol_harness: ActionHarness, aol_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert aol(["--db", aol_database_url, "limits", "--json"]) == 0

    [row] = [r for r in json.loads(capsys.readouterr().out) if r["action_type"] == "POST_SOCIAL"]
    assert row == {"action_type": "POST_SOCIAL", "source": "plugin",
                   "rate": {"count": 10, "period_seconds": 600.0, "key": "account"},
                   "concurrency": {"count": 1, "key": "account"}}


def test_one_accounts_posts_never_overlap_while_another_account_posts_meanwhile(
    aol_harness: ActionHarness, brands: tuple[GatedMastodon, FakeMastodon]
) -> None:
    gated, other = brands
    first = post(aol_harness, "brand-a", "first of brand A")
    second = post(aol_harness, "brand-a", "second of brand A")
    meanwhile = post(aol_harness, "brand-b", "brand B")
    worker, thread = start_worker(aol_harness)
    try:
        wait_for(lambda: aol_harness.action(meanwhile).status == Status.SUCCESS,
                 "brand B's post")
        wait_for(lambda: len(gated.posts) == 1, "brand A's first post to arrive")

        # brand A's first post is in flight: its second waits unclaimed, using no attempt
        assert aol_harness.action(first).status == Status.RUNNING
        waiting = aol_harness.action(second)
        assert (waiting.status, waiting.attempts) == (Status.PENDING, 0)
        assert len(other.posts) == 1

        gated.released.set()
        wait_for(lambda: aol_harness.action(second).status == Status.SUCCESS,
                 "brand A's second post")
    finally:
        gated.released.set()
        worker.request_stop("test over")
        thread.join(timeout=DEADLINE_SECONDS)

    assert [p["content"] for p in gated.posts] == ["first of brand A", "second of brand A"]
    assert gated.arrived_after_release == [False, True]  # the second came after the first's answer
    assert aol_harness.action(first).status == Status.SUCCESS


def test_an_operators_rate_per_account_holds_one_account_back_and_not_another(
    aol_harness: ActionHarness, brands: tuple[GatedMastodon, FakeMastodon],
    aol_database_url: str
) -> None:
    gated, other = brands
    gated.released.set()  # answers at once
    assert aol(["--db", aol_database_url, "limits", "set", "POST_SOCIAL", "--rate", "1/1h",
                "--concurrency", "1", "--key", "account"]) == 0
    first = post(aol_harness, "brand-a", "first of brand A")
    second = post(aol_harness, "brand-a", "second of brand A")
    meanwhile = post(aol_harness, "brand-b", "brand B")
    worker, thread = start_worker(aol_harness)
    try:  # the burst worker would wait out the hour for brand A's second post: stopped here
        wait_for(lambda: [aol_harness.action(i).status for i in (first, meanwhile)]
                 == [Status.SUCCESS] * 2, "brand A's first post and brand B's")
    finally:
        worker.request_stop("test over")
        thread.join(timeout=DEADLINE_SECONDS)
    held_back = aol_harness.action(second)
    assert (held_back.status, held_back.attempts) == (Status.PENDING, 0)
    assert [p["content"] for p in gated.posts] == ["first of brand A"]
    assert len(other.posts) == 1
