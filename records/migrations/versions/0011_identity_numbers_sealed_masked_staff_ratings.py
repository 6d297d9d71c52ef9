"""identity numbers sealed at rest with a masked copy and a keyed digest; staff-recorded ratings

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 21:45:00

0010 is taken on another branch; renumber at merge.

Existing identity numbers stay in clear here (a migration has no key): the masked copy is
filled now, and ``petition-gateway data-key rotate`` seals them and computes their digests
(docs/security.md). Until then the duplicate search does not find them by number.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mask(value: str) -> str:
    # the rule of records.keyring.mask_id_number as of this revision (migrations do not
    # import code that may change after them)
    v = "".join(value.split()).upper()
    return "*" * len(v) if len(v) <= 7 else v[:3] + "*" * (len(v) - 7) + v[-4:]


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("item_petitioners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_item_petitioners_id_number"))
        batch_op.alter_column(
            "id_number",
            existing_type=sa.String(length=32),
            type_=sa.String(length=200),
            existing_nullable=True,
        )
        batch_op.add_column(sa.Column("id_number_masked", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("id_number_digest", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_item_petitioners_id_number_digest", ["id_number_digest"], unique=False
        )
    with op.batch_alter_table("item_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("eval_acceptance_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("eval_handling_by", sa.Integer(), nullable=True))

    petitioners = sa.table(
        "item_petitioners",
        sa.column("id", sa.Integer()),
        sa.column("id_number", sa.String()),
        sa.column("id_number_masked", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(petitioners.c.id, petitioners.c.id_number).where(
            petitioners.c.id_number.is_not(None)
        )
    ).all()
    for pid, number in rows:
        conn.execute(
            petitioners.update()
            .where(petitioners.c.id == pid)
            .values(id_number_masked=_mask(number))
        )


def downgrade() -> None:
    """Downgrade schema (sealed numbers stay sealed: rotate cannot run backwards)."""
    with op.batch_alter_table("item_items", schema=None) as batch_op:
        batch_op.drop_column("eval_handling_by")
        batch_op.drop_column("eval_acceptance_by")
    with op.batch_alter_table("item_petitioners", schema=None) as batch_op:
        batch_op.drop_index("ix_item_petitioners_id_number_digest")
        batch_op.drop_column("id_number_digest")
        batch_op.drop_column("id_number_masked")
        batch_op.alter_column(
            "id_number",
            existing_type=sa.String(length=200),
            type_=sa.String(length=32),
            existing_nullable=True,
        )
        batch_op.create_index(
            batch_op.f("ix_item_petitioners_id_number"), ["id_number"], unique=False
        )
