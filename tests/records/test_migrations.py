"""The models and the migrations agree: a model change without a migration fails here.

The database is migrated from scratch by the same code the service runs on start, then
Alembic's autogenerate compares it with the models (types included), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, MetaData, String
from sqlalchemy.engine import Connection

import records.item_models  # noqa: F401  (registers the petition-item tables)
import records.models  # noqa: F401  (registers the tables)
from records.base import Base
from records.db import Database


def _differences(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diff: list[Any] = compare_metadata(context, metadata)
    return diff


async def _compare(database_url: str, metadata: MetaData) -> list[Any]:
    db = Database(database_url)
    try:
        await db.upgrade()
        async with db.engine.connect() as conn:
            return await conn.run_sync(_differences, metadata)
    finally:
        await db.close()


async def test_models_and_migrations_agree(database_url: str) -> None:
    diff = await _compare(database_url, Base.metadata)
    assert diff == [], "models differ from the migrations; add a migration:\n" + "\n".join(
        map(repr, diff)
    )


async def test_a_model_change_without_a_migration_is_caught(database_url: str) -> None:
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["sessions"].append_column(Column("mood", String(20)))
    diff = await _compare(database_url, changed)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "mood")]
