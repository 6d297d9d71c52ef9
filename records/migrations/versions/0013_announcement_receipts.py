"""which terminals showed an announcement (append-only receipts)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 23:30:00

Numbered after the highest on main; renumber at merge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import records.base

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "announcement_receipts",
        sa.Column("announcement_id", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("shown_at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcements.id"],
            name=op.f("fk_announcement_receipts_announcement_id_announcements"),
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"],
            ["terminals.id"],
            name=op.f("fk_announcement_receipts_terminal_id_terminals"),
        ),
        sa.PrimaryKeyConstraint(
            "announcement_id", "terminal_id", name=op.f("pk_announcement_receipts")
        ),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("announcement_receipts")
