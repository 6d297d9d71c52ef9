"""Shared fixtures for recorder tests (helpers live in synthetic_media.py)."""

from __future__ import annotations

import pytest
from synthetic_media import Encoded, encode_source


@pytest.fixture(scope="session")
def source() -> list[Encoded]:
    """Real VP8 + Opus packets of a 9.5 s source, encoded once per test run."""
    return encode_source()
