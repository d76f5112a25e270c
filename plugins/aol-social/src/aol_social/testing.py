"""A test kit for code that enqueues POST_SOCIAL: the kit's loopback HTTP endpoint at the path
the handler posts to. Point ``AOL_SOCIAL_ENDPOINT`` at ``FakeEndpoint().url``."""

from __future__ import annotations

from aol_core.testing.endpoint import FakeEndpoint as _KitEndpoint
from aol_core.testing.endpoint import Received, Reply

__all__ = ["FakeEndpoint", "Received", "Reply"]


class FakeEndpoint(_KitEndpoint):
    def __init__(self, path: str = "/hooks/social") -> None:
        super().__init__(path)
