"""Shared fixtures: a real database (SQLite and PostgreSQL), the real app, seed data.

PostgreSQL tests use ``GATEWAY_TEST_POSTGRES_URL`` (CI sets it) with a schema per test; Redis
tests use ``GATEWAY_TEST_REDIS_URL``. Without them the tests skip with the reason, except
under ``CI=true``, where a missing service is a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from records.store import Store
from tests.helpers import Api, make_settings, postgres_schema_url, seed_store
from web import keys


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated-from-scratch database: a SQLite file, then PostgreSQL in its own schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        return
    url, drop = await postgres_schema_url()
    try:
        yield url
    finally:
        await drop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database only (tests whose subject is not the database)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"


@pytest.fixture
async def api(aiohttp_client: Any, tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    """The real app on a fresh database (SQLite and PostgreSQL), seeded."""
    settings = make_settings(tmp_path, database_url)
    async for a in _api(aiohttp_client, settings):
        yield a


@pytest.fixture
async def api_sqlite(aiohttp_client: Any, tmp_path: Path, sqlite_url: str) -> AsyncIterator[Api]:
    """The real app on SQLite only (signaling tests whose subject is not the database)."""
    settings = make_settings(tmp_path, sqlite_url)
    async for a in _api(aiohttp_client, settings):
        yield a


async def _api(aiohttp_client: Any, settings: Settings) -> AsyncIterator[Api]:
    from gateway.app import create_app  # noqa: PLC0415

    store = Store(settings.database_url)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()
    app = create_app(settings)
    client = await aiohttp_client(app)
    seed.store = app[keys.STORE]
    yield Api(client, seed)
