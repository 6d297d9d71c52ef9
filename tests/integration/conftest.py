"""Fixtures of the end-to-end tests through the real hub."""

from tests.media_peer import loopback

__all__ = ["loopback"]
