"""POST_SOCIAL is never batched into a shared transaction: its handler calls a platform, and a
neighbour's failure or a shared commit that fails must never run (or undo the record of) a
post that already went out. Batching is opt-in (``share_transaction``), and it does not opt in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from aol_core import Status
from aol_core.drivers import Claim
from aol_core.testing import ActionHarness
from aol_core.worker import Worker, WorkerOptions

from aol_social.testing import FakeEndpoint


def test_post_social_does_not_declare_share_transaction(aol_harness: ActionHarness) -> None:
    assert aol_harness.registry.routes["POST_SOCIAL"].spec.share_transaction is False


def test_a_worker_runs_each_post_social_in_a_transaction_of_its_own(
    aol_harness: ActionHarness, social_endpoint: FakeEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [aol_harness.enqueue("POST_SOCIAL", {"social_platform": "facebook",
                                               "content": f"post {n}"}) for n in range(4)]
    worker = Worker(aol_harness.engine, aol_harness.registry, aol_harness.settings,
                    WorkerOptions(name="solo", concurrency=1, burst=True))
    worker.handler_seconds["POST_SOCIAL"] = 0.001  # known fast: shareable types would batch
    transactions: list[int] = []  # how many actions each dispatcher transaction ran
    run, run_batch = worker.dispatcher.run, worker.dispatcher.run_batch

    def run_alone(claim: Claim, proof_mode: bool, *rest: Any) -> Any:
        transactions.append(1)
        return run(claim, proof_mode, *rest)

    def run_shared(batch: Sequence[tuple[Claim, bool]]) -> Any:
        transactions.append(len(batch))
        return run_batch(batch)

    monkeypatch.setattr(worker.dispatcher, "run", run_alone)
    monkeypatch.setattr(worker.dispatcher, "run_batch", run_shared)

    worker.run()

    assert [aol_harness.action(i).status for i in ids] == [Status.SUCCESS] * 4
    assert transactions == [1, 1, 1, 1]
    assert len(social_endpoint.posts) == 4
