"""The POST_SOCIAL handler: the glue between a provider and AOL's queue.

Never twice, never lost. The publication's intent is committed in the plugin's table (on a
connection of its own, so the handler's rollback cannot undo it) before the one call that can
create the post, and its remote id and URL right after. A later attempt reads that record:

* PUBLISHED: the post exists (the worker died before the action's SUCCESS committed); the
  attempt returns it without calling the platform.
* SENDING: a create call went out and its answer never arrived (a timeout, a reset, a crash
  between the call and the commit). The provider asks the platform where it can (Bluesky's
  record key, LinkedIn's duplicate answer, Mastodon's Idempotency-Key within its hour) and
  otherwise the action is held for a person: it is never blindly posted again.
* NEW, UNSENT (the platform answered that it created nothing) or HELD (a person retried a
  held action, deciding to send again): the post is created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from aol_core import ActionContext, Hold, PermanentError, RetryableError, Snooze, utcnow
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from aol_social import config, media, providers, store
from aol_social.payload import Post
from aol_social.providers.base import (
    CredentialsRejected,
    NeedsPerson,
    Provider,
    ProviderError,
    Published,
    RateLimited,
    Rejected,
    Unavailable,
)
from aol_social.providers.transport import AnswerLost, NotSent, client
from aol_social.store import State

PROOF_ARTIFACT = "requests.json"


def post_social(
    session: Session, payload: Mapping[str, Any], proof_mode: bool, context: ActionContext
) -> Any:
    post = Post.from_payload(payload, context.action_id)
    if proof_mode:
        return _proof(post, context)
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    account = config.resolve(post.platform, post.account)
    account.check_complete()
    provider = providers.for_account(account, engine)
    _refuse_problems(provider, post)
    publication = store.open_intent(
        engine, idempotency_key=post.idempotency_key, action_id=context.action_id,
        account=account.name, provider=provider.name,
        remote_key=provider.remote_key(post.idempotency_key),
    )
    if publication.state is State.PUBLISHED:
        assert publication.remote_id is not None
        context.log("INFO", f"already published as {publication.remote_id} by an earlier "
                            "attempt; not sent again")
        return _result(post, provider, Published(publication.remote_id, publication.url, True))
    context.log("INFO", f"publishing to {provider.label} as account {account.name!r} "
                        f"(attempt {context.attempt} of {context.max_attempts})")
    published = _publish(engine, provider, post, publication, context)
    store.mark_published(engine, post.idempotency_key, published.remote_id, published.url)
    context.log("INFO", f"{provider.label} has the post as {published.remote_id}"
                        + (" (found from an earlier attempt)" if published.existing else ""))
    return _result(post, provider, published)


def _publish(engine: Engine, provider: Provider, post: Post, publication: store.Publication,
             context: ActionContext) -> Published:
    """Publish, turning the provider's outcomes into AOL's; keeps the record's state true."""
    key = post.idempotency_key
    sent = False

    def before_create() -> None:
        nonlocal sent
        store.mark_sending(engine, key)
        sent = True

    with client(provider.account.timeout) as http:
        try:
            if publication.state is State.SENDING:
                found = provider.existing(http, publication.remote_key, publication.updated_at)
                if found is not None:
                    return found
                context.log("INFO", "an earlier attempt's answer was lost; "
                                    f"{provider.label} cannot have the post twice: sending again")
            files = media.load(provider, post.media, http)
            return provider.publish(http, post, publication.remote_key, files, before_create)
        except AnswerLost as exc:
            if not sent:
                raise RetryableError(str(exc)) from None
            return _after_lost_answer(engine, provider, http, publication, str(exc))
        except NeedsPerson as exc:
            store.mark(engine, key, State.HELD)
            raise Hold(f"{provider.label}: {exc}") from None
        except (NotSent, ProviderError) as exc:
            if sent:
                store.mark(engine, key, State.UNSENT)  # the platform answered: nothing created
            raise _queue_outcome(exc, provider) from None


def _after_lost_answer(engine: Engine, provider: Provider, http: httpx.Client,
                       publication: store.Publication, reason: str) -> Published:
    """The create call went out and no answer came: ask the platform now if it can say."""
    try:
        found = provider.existing(http, publication.remote_key, utcnow())
    except NeedsPerson as exc:
        store.mark(engine, publication.idempotency_key, State.HELD)
        raise Hold(f"{provider.label}: {reason}; {exc}") from None
    except (NotSent, AnswerLost, ProviderError):
        found = None
    if found is None:
        raise RetryableError(f"{reason}; the next attempt checks with {provider.label} "
                             "before sending again")
    return found


def _queue_outcome(exc: Exception, provider: Provider) -> Exception:
    if isinstance(exc, RateLimited):
        return Snooze(exc.until, str(exc))
    if isinstance(exc, CredentialsRejected | Rejected):
        return PermanentError(str(exc))
    if isinstance(exc, NotSent | Unavailable):
        return RetryableError(str(exc))
    return RetryableError(f"{provider.label}: {exc}")


def _refuse_problems(provider: Provider, post: Post) -> None:
    problems = provider.problems(post)
    if problems:
        raise PermanentError(f"{provider.label} would refuse this post: {'; '.join(problems)}")


def _result(post: Post, provider: Provider, published: Published) -> dict[str, Any]:
    return {"posted": True, "platform": post.platform, "provider": provider.name,
            "account": provider.account.name, "id": published.remote_id,
            "url": published.url, "existing": published.existing}


def _proof(post: Post, context: ActionContext) -> dict[str, Any]:
    """The real path up to the network: account, validation, media checks, the requests."""
    try:
        account = config.resolve(post.platform, post.account)
    except PermanentError:
        account = config.placeholder(post.platform, post.account)
    provider = providers.for_account(account)
    _refuse_problems(provider, post)
    try:
        files = media.load(provider, post.media, None)
    except ProviderError as exc:
        raise PermanentError(str(exc)) from None
    requests = provider.proof_requests(post, provider.proof_key(post.idempotency_key), files)
    document = {"note": "proof mode: nothing was sent; secrets are redacted",
                "action_id": context.action_id, "idempotency_key": post.idempotency_key,
                "platform": post.platform, "account": account.name,
                "provider": provider.name, "requests": [r.redacted() for r in requests]}
    ref = context.record_artifact(
        PROOF_ARTIFACT, json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True),
        "application/json")
    return {"proof": True, "artifact": ref.uri, "sha256": ref.sha256,
            "provider": provider.name, "requests": len(requests)}
