"""The records store: the database plus the org tree, as the layers above use them.

``async with store.transaction() as tx:`` gives a session that commits on success and rolls
back on error, converting SQLAlchemy errors into :class:`RecordsError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, RecordsError
from records import orgs
from records.db import Database


class Store:
    """Owns the database and the current org tree snapshot."""

    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        self.tree = orgs.OrgTree(())

    async def start(self, *, migrate: bool) -> None:
        """Apply migrations (embedded default) and load the org tree."""
        if migrate:
            await self.db.upgrade()
        await self.reload_tree()

    async def reload_tree(self) -> orgs.OrgTree:
        """Re-read the org tree (after an import)."""
        async with self.transaction() as tx:
            self.tree = await orgs.load_tree(tx)
        return self.tree

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: commit on success, roll back on any error."""
        async with self.db.sessions() as session:
            try:
                yield session
                await session.commit()
            except IntegrityError as exc:
                await session.rollback()
                raise Conflict(f"conflicting write: {exc.orig}") from exc
            except SQLAlchemyError as exc:
                await session.rollback()
                raise RecordsError(f"database error: {exc.__class__.__name__}: {exc}") from exc
            except BaseException:
                await session.rollback()
                raise

    async def import_org_file(self, path: Path) -> orgs.ImportResult:
        """Validate and import an org file in one transaction, then reload the tree."""
        specs = orgs.parse_org_file(path)
        async with self.transaction() as tx:
            result = await orgs.import_units(tx, specs)
        await self.reload_tree()
        return result

    async def ping(self) -> None:
        """Raise RecordsError if the database does not answer."""
        await self.db.ping()

    async def close(self) -> None:
        """Close the database; idempotent."""
        await self.db.close()
