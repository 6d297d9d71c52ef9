"""Fixtures of the petition-item tests: a calendar and a real database per test.

``item_db`` runs each test on a fresh SQLite file and, when GATEWAY_TEST_POSTGRES_URL is set,
on PostgreSQL in a schema of its own (dropped afterwards). With CI=true an unreachable or
unset PostgreSQL fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

import records.item_models as item_models
from records.base import Base
from records.calendar import HolidayCalendar, load_calendar

ITEM_TABLES = [
    t for name, t in Base.metadata.tables.items() if name.startswith(("item_", "backlog_"))
]
assert item_models.ItemRow.__table__ in ITEM_TABLES


@pytest.fixture(scope="session")
def calendar() -> HolidayCalendar:
    return load_calendar()


def _postgres_url() -> str | None:
    url = os.environ.get("GATEWAY_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but GATEWAY_TEST_POSTGRES_URL is not set")
        pytest.skip("GATEWAY_TEST_POSTGRES_URL not set")
    return url


async def _make_engine(backend: str, tmp_path: Path) -> tuple[AsyncEngine, str | None]:
    if backend == "sqlite":
        return create_async_engine("sqlite+aiosqlite:///" + str(tmp_path / "items.db")), None
    url = _postgres_url()
    assert url is not None
    schema = "t_" + uuid.uuid4().hex[:12]
    engine = create_async_engine(url, connect_args={"server_settings": {"search_path": schema}})
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except (OSError, Exception) as exc:  # asyncpg/OS errors: server down
        await engine.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {url} unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {url} unreachable: {exc}")
    return engine, schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def item_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine, schema = await _make_engine(request.param, tmp_path)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=ITEM_TABLES))
    try:
        yield engine
    finally:
        if schema is not None:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


@pytest.fixture
def sessions(item_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(item_engine, expire_on_commit=False)
