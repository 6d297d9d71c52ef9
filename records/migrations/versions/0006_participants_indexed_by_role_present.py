"""participants indexed by session, role and left_at (a join reads the present ones by role)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 01:00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("session_participants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_session_participants_present", ["session_id", "role", "left_at"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("session_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_session_participants_present")
