"""A plugin module whose handler declares ``context=None``, as an author expecting an
optional argument would; pluggy passes no argument that has a default."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from aol_core import ActionContext, PermanentError, hookimpl


@hookimpl
def aol_register_actions() -> list[str]:
    return ["HOSTILE_CONTEXT_NONE"]


@hookimpl
def handle_action(
    action_type: str, session: Session, payload: dict[str, Any],
    context: ActionContext | None = None,
) -> Any:
    if context is None:
        raise PermanentError("handle_action was called without its context")
    return {"action_id": context.action_id, "attempt": context.attempt}
