"""The hook implementations AOL finds through the ``aicmo.actions`` entry point."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aol_core import (
    ActionContext,
    ActionSpec,
    Cap,
    InvalidPayload,
    PermanentError,
    RateLimit,
    hookimpl,
)
from aol_core.cli.plugin_commands import PluginCommands
from sqlalchemy import MetaData
from sqlalchemy.orm import Session

from aol_social import commands as social_commands
from aol_social import config, providers, store
from aol_social.handlers import post_social
from aol_social.payload import PAYLOAD_SCHEMA, POST_SOCIAL, Post


@dataclass(frozen=True)
class PostSocialSpec(ActionSpec):
    """The schema, then the platform's own limits (graphemes, links counted as 23, media
    count and size), so a post the platform would refuse is refused at enqueue."""

    def validate(self, payload: Mapping[str, Any]) -> None:
        super().validate(payload)
        post = Post.from_payload(payload)
        try:
            account = config.resolve(post.platform, post.account)
        except config.WrongNetwork as exc:
            raise InvalidPayload(f"invalid payload for {self.name}: {exc}") from None
        except PermanentError:  # the enqueuing machine need not hold the accounts
            account = config.placeholder(post.platform, post.account)
        problems = providers.for_account(account).problems(post)
        if problems:
            raise InvalidPayload(f"invalid payload for {self.name}: {'; '.join(problems)}")


#: the payload field the flow control counts per: one account's posts wait for each other,
#: other accounts' do not (posts naming no account share one key)
ACCOUNT_KEY = "account"
#: at most 10 posts started per account in any 10 minutes (60 an hour): under Mastodon's 300
#: statuses per 3 hours and far under Bluesky's points, and no burst of a whole campaign at
#: once; the daily quotas of LinkedIn and X answer 429 with a reset time, which snoozes
POST_RATE = RateLimit(10, timedelta(minutes=10), key=ACCOUNT_KEY)
#: one post at a time per account: posts go out in order, and a Bluesky session is never
#: refreshed by two of one account's posts at once
POST_CONCURRENCY = Cap(1, key=ACCOUNT_KEY)

#: not ``share_transaction``: the handler calls a platform and commits its intent on a
#: connection of its own, so it must never run inside a transaction shared with other actions
POST_SOCIAL_SPEC = PostSocialSpec(
    POST_SOCIAL,
    description="Publish a post to Mastodon, Bluesky, LinkedIn, X or a webhook, exactly once "
    "(proof mode: record the requests without sending them)",
    payload_schema=PAYLOAD_SCHEMA,
    rate_limit=POST_RATE,
    concurrency=POST_CONCURRENCY,
)


@hookimpl
def aol_register_actions() -> list[ActionSpec]:
    return [POST_SOCIAL_SPEC]


@hookimpl
def aol_schema() -> MetaData:
    return store.metadata


@hookimpl
def aol_migrations() -> Path:
    return Path(__file__).parent / "migrations"


@hookimpl
def aol_register_commands(commands: PluginCommands) -> None:
    social_commands.register(commands)


@hookimpl
def handle_action(
    action_type: str, session: Session, payload: dict[str, Any], proof_mode: bool,
    context: ActionContext,
) -> Any:
    if action_type != POST_SOCIAL:
        raise PermanentError(f"aol-social does not handle {action_type}")
    return post_social(session, payload, proof_mode, context)


@hookimpl
def aol_example_actions() -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            POST_SOCIAL,
            {
                "social_platform": "x",
                "content": "Our spring collection is live. #launch https://example.com/spring",
            },
        ),
        (
            POST_SOCIAL,
            {
                "social_platform": "bluesky",
                "content": "Our spring collection is live: https://example.com/spring",
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
