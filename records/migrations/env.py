"""Alembic environment: runs on the connection handed in by records.db (sync inside run_sync)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import records.frozen_reports  # noqa: F401  (registers the frozen annual reports)
import records.item_models  # noqa: F401  (registers the petition-item tables)
import records.models  # noqa: F401  (registers the tables)
import records.notices  # noqa: F401  (registers the imported holiday notices)
from records.base import Base

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        # autogenerate: `alembic -x url=sqlite:///x.db revision --autogenerate`
        url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///autogen.db")
        engine = create_engine(url)
        with engine.begin() as conn:
            _configure(conn)
        return
    _configure(connection)


def _configure(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode for ALTER
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
