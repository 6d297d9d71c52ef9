"""backlog cases say who closed them (销号)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 21:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("backlog_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_by", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("backlog_cases", schema=None) as batch_op:
        batch_op.drop_column("closed_by")
