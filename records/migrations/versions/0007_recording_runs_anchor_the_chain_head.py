"""recording runs: one row per finalised run, its chain line and position (the chain head)

A session may now be recorded in several runs (recording toggled, the room moved to another
worker); each run is chained on its own. The per-session ``recording_manifests`` rows move
into ``recording_runs`` unchanged (run id "", position unknown until the keeper reads the
chain at start).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 21:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import records.base

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "recording_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_chain_hash", sa.String(length=64), nullable=True),
        sa.Column("chain_index", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("created_at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_recording_runs_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_runs")),
        sa.UniqueConstraint("chain_hash", name="uq_recording_runs_chain_hash"),
        sa.UniqueConstraint("chain_index", name="uq_recording_runs_chain_index"),
    )
    with op.batch_alter_table("recording_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recording_runs_session_id"), ["session_id"], unique=False
        )
    op.execute(
        "INSERT INTO recording_runs (session_id, run_id, path, sha256, chain_hash, state,"
        " created_at) SELECT session_id, '', path, sha256, chain_hash, 'closed', created_at"
        " FROM recording_manifests"
    )
    op.drop_table("recording_manifests")


def downgrade() -> None:
    """Downgrade schema (keeps one run per session: the first)."""
    op.create_table(
        "recording_manifests",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", records.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_recording_manifests_session_id_sessions"),
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_recording_manifests")),
    )
    op.execute(
        "INSERT INTO recording_manifests (session_id, path, sha256, chain_hash, created_at)"
        " SELECT session_id, path, sha256, chain_hash, created_at FROM recording_runs r"
        " WHERE r.id = (SELECT min(id) FROM recording_runs q WHERE q.session_id = r.session_id)"
    )
    op.drop_table("recording_runs")
