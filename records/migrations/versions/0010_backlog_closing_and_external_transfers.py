"""backlog cases say who closed them (销号); transfers to organs outside the district

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 21:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import records.base

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("backlog_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_by", sa.Integer(), nullable=True))
    op.create_table(
        "item_external_transfers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("from_unit_id", sa.Integer(), nullable=False),
        sa.Column("organ", sa.String(length=200), nullable=False),
        sa.Column("organ_kind", sa.String(length=32), nullable=False),
        sa.Column("at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["item_items.id"],
            name=op.f("fk_item_external_transfers_item_id_item_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_external_transfers")),
    )
    with op.batch_alter_table("item_external_transfers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_item_external_transfers_item_id"), ["item_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("item_external_transfers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_external_transfers_item_id"))
    op.drop_table("item_external_transfers")
    with op.batch_alter_table("backlog_cases", schema=None) as batch_op:
        batch_op.drop_column("closed_by")
