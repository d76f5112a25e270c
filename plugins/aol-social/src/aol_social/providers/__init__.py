"""One module per platform, each a :class:`~aol_social.providers.base.Provider`."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from aol_social.config import Account
from aol_social.providers.base import Provider
from aol_social.providers.bluesky import Bluesky
from aol_social.providers.linkedin import LinkedIn
from aol_social.providers.mastodon import Mastodon
from aol_social.providers.webhook import Webhook
from aol_social.providers.x import X

PROVIDERS: dict[str, type[Provider]] = {
    p.name: p for p in (Bluesky, LinkedIn, Mastodon, Webhook, X)
}


def for_account(account: Account, engine: Engine | None = None) -> Provider:
    """The provider publishing through ``account`` (``engine``: where Bluesky keeps its
    session; not needed to validate or to prepare proof requests)."""
    if account.provider == Bluesky.name:
        return Bluesky(account, engine)
    return PROVIDERS[account.provider](account)


__all__ = ["PROVIDERS", "Provider", "for_account"]
