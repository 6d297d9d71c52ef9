"""reports as of a date: item events indexed by time

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:10:00

"""

from collections.abc import Sequence

from alembic import op

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


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_item_events_at", table_name="item_events")
