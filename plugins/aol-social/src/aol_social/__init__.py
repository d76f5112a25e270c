"""AOL plugin ``aol-social``: the ``POST_SOCIAL`` action type.

Real mode POSTs the post as JSON to the endpoint named by ``AOL_SOCIAL_ENDPOINT``; proof
mode sends nothing and records what would have been posted as an artifact.
"""

from aol_social.payload import PLATFORM_LIMITS, POST_SOCIAL, Post

__all__ = ["PLATFORM_LIMITS", "POST_SOCIAL", "Post"]
