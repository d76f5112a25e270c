"""BENCH_NOOP: an action type whose handler does nothing, for ``python -m bench``.

With no work in the handler, a drain measures AOL's own cost per action: the claim, the
dispatch through the entry-point plugin, and the completion with its log row.

BENCH_LIMITED does nothing either, at most once an hour per ``account``: a backlog of it
waits behind its rate limit while BENCH_NOOP drains (the ``limited-backlog`` scenario).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aol_core import ActionSpec, RateLimit, hookimpl

BENCH_NOOP = "BENCH_NOOP"
BENCH_LIMITED = "BENCH_LIMITED"


@hookimpl
def aol_register_actions() -> list[ActionSpec]:
    return [ActionSpec(BENCH_NOOP, description="does nothing (benchmarks)",
                       share_transaction=True),
            ActionSpec(BENCH_LIMITED, description="does nothing, once an hour per account",
                       share_transaction=True,
                       rate_limit=RateLimit(1, timedelta(hours=1), key="account"))]


@hookimpl
def handle_action(action_type: str, payload: dict[str, Any]) -> None:
    return None
