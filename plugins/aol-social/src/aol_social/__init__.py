"""AOL plugin ``aol-social``: the ``POST_SOCIAL`` action type.

Real mode publishes through the account's provider (Mastodon, Bluesky, LinkedIn, X, or a
webhook for everything else), recording the publication's intent before the one call that
creates the post so that no post goes out twice or is lost; proof mode sends nothing and
records exactly the requests that would have been sent.
"""

from aol_social.payload import PLATFORM_LIMITS, POST_SOCIAL, Post

__all__ = ["PLATFORM_LIMITS", "POST_SOCIAL", "Post"]
