"""BENCH_NOOP: an action type whose handler does nothing, for ``python -m bench``.

With no work in the handler, a drain measures AOL's own cost per action: the claim, the
dispatch through the entry-point plugin, and the completion with its log row.
"""

from __future__ import annotations

from typing import Any

from aol_core import ActionSpec, hookimpl

BENCH_NOOP = "BENCH_NOOP"


@hookimpl
def aol_register_actions() -> list[ActionSpec]:
    return [ActionSpec(BENCH_NOOP, description="does nothing (benchmarks)",
                       share_transaction=True)]


@hookimpl
def handle_action(action_type: str, payload: dict[str, Any]) -> None:
    return None
