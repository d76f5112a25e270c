"""The hook implementations AOL finds through the ``aicmo.actions`` entry point."""

from __future__ import annotations

from typing import Any

from aol_core import ActionContext, ActionSpec, PermanentError, hookimpl

from aol_social.handlers import post_social
from aol_social.payload import PAYLOAD_SCHEMA, POST_SOCIAL

POST_SOCIAL_SPEC = ActionSpec(
    POST_SOCIAL,
    description="Publish a post to a social platform through the configured endpoint "
    "(proof mode: record it without posting)",
    payload_schema=PAYLOAD_SCHEMA,
)


@hookimpl
def aol_register_actions() -> list[ActionSpec]:
    return [POST_SOCIAL_SPEC]


@hookimpl
def handle_action(
    action_type: str, payload: dict[str, Any], proof_mode: bool, context: ActionContext
) -> Any:
    if action_type != POST_SOCIAL:
        raise PermanentError(f"aol-social does not handle {action_type}")
    return post_social(payload, proof_mode, context)


@hookimpl
def aol_example_actions() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            POST_SOCIAL,
            {
                "social_platform": "twitter",
                "content": "Our spring collection is live. #launch",
                "audience": "followers",
            },
        ),
        (
            POST_SOCIAL,
            {
                "social_platform": "linkedin",
                "content": "We are hiring two engineers to work on our scheduling "
                "platform. Apply through our careers page.",
            },
        ),
    ]
