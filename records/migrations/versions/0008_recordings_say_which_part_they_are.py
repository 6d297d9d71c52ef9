"""recordings say which part they are: segment number, reason, derived_from (recovered copy)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 20:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("segment", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("reason", sa.String(length=24), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("derived_from", sa.String(length=500), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("derived_from")
        batch_op.drop_column("reason")
        batch_op.drop_column("segment")
