"""reports as of a date: item events indexed by time; frozen reports; holiday notices

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import records.base

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # records/statistics.py finds the items changed since a report's as_of through this.
    op.create_index(
        "ix_item_events_at", "item_events", ["at", "item_id", "seq", "type"], unique=False
    )
    # records/notices.py: every hub reads the imported notices from the shared database.
    op.create_table(
        "calendar_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("imported_by", sa.String(length=80), nullable=False),
        sa.Column("imported_at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_notices")),
    )
    op.create_index("ix_calendar_notices_year", "calendar_notices", ["year", "id"], unique=False)
    # records/frozen_reports.py: annual reports as filed, with their hash.
    op.create_table(
        "frozen_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("as_of", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=16), nullable=False),
        sa.Column("unit_ids", sa.JSON(), nullable=True),
        sa.Column("csv", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("frozen_by", sa.Integer(), nullable=True),
        sa.Column("frozen_at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frozen_reports")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("frozen_reports")
    op.drop_index("ix_calendar_notices_year", table_name="calendar_notices")
    op.drop_table("calendar_notices")
    op.drop_index("ix_item_events_at", table_name="item_events")
