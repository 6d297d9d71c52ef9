"""visits by batch and person-time, supervision of items, the repeat-item flag

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 21:50:00

0010 is taken on another branch; renumber at merge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import records.base

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "item_visits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("persons", sa.Integer(), nullable=False),
        sa.Column("collective", sa.Boolean(), nullable=False),
        sa.Column("leader_account_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.String(length=32), nullable=True),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("recorded_at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("persons >= 1", name=op.f("ck_item_visits_persons_positive")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item_items.id"], name=op.f("fk_item_visits_item_id_item_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_visits")),
    )
    with op.batch_alter_table("item_visits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_item_visits_day_unit", ["visited_on", "unit_id", "kind"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_item_visits_item_id"), ["item_id"], unique=False)
    op.create_table(
        "item_supervisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item_items.id"], name=op.f("fk_item_supervisions_item_id_item_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_supervisions")),
    )
    with op.batch_alter_table("item_supervisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_item_supervisions_item_id"), ["item_id"], unique=False
        )
    with op.batch_alter_table("item_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("repeat", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("item_items", schema=None) as batch_op:
        batch_op.alter_column("repeat", server_default=None)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("item_items", schema=None) as batch_op:
        batch_op.drop_column("repeat")
    with op.batch_alter_table("item_supervisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_supervisions_item_id"))
    op.drop_table("item_supervisions")
    with op.batch_alter_table("item_visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_visits_item_id"))
        batch_op.drop_index("ix_item_visits_day_unit")
    op.drop_table("item_visits")
