"""The POST_SOCIAL handler: post for real, or record a proof of what would be posted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aol_core import ActionContext

from aol_social.payload import Post
from aol_social.publisher import Endpoint, deliver

PROOF_ARTIFACT = "post.txt"
REQUEST_ARTIFACT = "request.json"


def post_social(payload: Mapping[str, Any], proof_mode: bool, context: ActionContext) -> Any:
    post = Post.from_payload(payload)
    if proof_mode:
        ref = context.record_artifact(
            PROOF_ARTIFACT, post.proof_text(context.action_id), "text/plain"
        )
        return {"proof": True, "artifact": ref.uri, "sha256": ref.sha256}

    endpoint = Endpoint.from_env()
    body = post.request_body(context.action_id)
    # The exact bytes sent, kept even when this attempt fails; a retry replaces the copy.
    request = context.record_artifact(REQUEST_ARTIFACT, body, "application/json")
    context.log(
        "INFO",
        f"posting to {post.platform} via {endpoint.safe_url} "
        f"(attempt {context.attempt} of {context.max_attempts})",
    )
    delivered = deliver(endpoint, body, post.idempotency_key)
    context.log("INFO", f"{endpoint.safe_url} accepted the post with HTTP {delivered.status}")
    return {
        "posted": True,
        "status": delivered.status,
        "response": delivered.response,
        "platform": post.platform,
        "request_sha256": request.sha256,
    }
