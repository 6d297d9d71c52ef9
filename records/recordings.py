"""Recording runs and the anchored head of the hash chain; honest ends of interrupted sessions.

The recorder chains every finalised run in ``chain.jsonl`` on disk; here each run gets a row
with its chain hash and position, written in the same transaction as its file rows. The row
with the highest position is the chain head the database vouches for: ``recordings verify``
compares it with the chain on disk, so removing the newest runs together with their chain
lines is detected. File rows themselves stay in ``records.sessions`` (``recordings``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from records import models
from records.enums import SessionState


@dataclasses.dataclass(frozen=True, slots=True)
class RunInfo:
    """One finalised recording run."""

    session_id: str
    run_id: str
    path: str
    sha256: str
    chain_hash: str
    previous_chain_hash: str | None
    chain_index: int | None
    state: str


@dataclasses.dataclass(frozen=True, slots=True)
class VerifyData:
    """What the database says the recordings directory holds (for ``recordings verify``).

    Attributes:
        head: ``(chain hash, position)`` of the newest anchored run, or None.
        runs: chain hash → manifest path (relative to the recordings root).
        files: file path (relative to the root) → (sha256, deleted by retention).
    """

    head: tuple[str, int] | None
    runs: dict[str, str]
    files: dict[str, tuple[str, bool]]


async def save_run(db: AsyncSession, run: RunInfo) -> bool:
    """Record a finalised run (idempotent by chain hash); returns whether it was new.

    A run already known without its position (moved from the older per-session table) gets
    the position now.
    """
    row = await db.scalar(
        select(models.RecordingRun).where(models.RecordingRun.chain_hash == run.chain_hash)
    )
    if row is not None:
        if row.chain_index is None and run.chain_index is not None:
            row.chain_index = run.chain_index
            await db.flush()
        return False
    db.add(
        models.RecordingRun(
            session_id=run.session_id,
            run_id=run.run_id,
            path=run.path,
            sha256=run.sha256,
            chain_hash=run.chain_hash,
            previous_chain_hash=run.previous_chain_hash,
            chain_index=run.chain_index,
            state=run.state,
        )
    )
    await db.flush()
    return True


async def known_chain_hashes(db: AsyncSession) -> set[str]:
    """Chain hashes of the runs recorded with their position."""
    rows = await db.scalars(
        select(models.RecordingRun.chain_hash).where(models.RecordingRun.chain_index.is_not(None))
    )
    return set(rows.all())


async def chain_head(db: AsyncSession) -> tuple[str, int] | None:
    """``(chain hash, position)`` of the newest run the database anchors, or None."""
    top = await db.scalar(select(func.max(models.RecordingRun.chain_index)))
    if top is None:
        return None
    chain_hash = await db.scalar(
        select(models.RecordingRun.chain_hash).where(models.RecordingRun.chain_index == top)
    )
    return (str(chain_hash), int(top))


async def runs_of(db: AsyncSession, session_id: str) -> list[RunInfo]:
    """The finalised runs of a session, in chain order."""
    rows = await db.scalars(
        select(models.RecordingRun)
        .where(models.RecordingRun.session_id == session_id)
        .order_by(models.RecordingRun.chain_index, models.RecordingRun.id)
    )
    return [
        RunInfo(
            r.session_id,
            r.run_id,
            r.path,
            r.sha256,
            r.chain_hash,
            r.previous_chain_hash,
            r.chain_index,
            r.state,
        )
        for r in rows.all()
    ]


async def verify_data(db: AsyncSession) -> VerifyData:
    """Everything ``recordings verify`` compares with the disk."""
    runs = {
        str(h): str(p)
        for h, p in (
            await db.execute(select(models.RecordingRun.chain_hash, models.RecordingRun.path))
        ).all()
    }
    files = {
        str(path): (str(sha or ""), deleted is not None or state == "failed")
        for path, sha, deleted, state in (
            await db.execute(
                select(
                    models.Recording.path,
                    models.Recording.sha256,
                    models.Recording.deleted_at,
                    models.Recording.state,
                )
            )
        ).all()
    }
    return VerifyData(await chain_head(db), runs, files)


async def extend_interrupted(db: AsyncSession, session_id: str, until: dt.datetime) -> bool:
    """A session a crash interrupted lasted at least until ``until`` (its media's end).

    Sessions are closed at their last database activity when the hub restarts; the
    recording (recovered after the crash) knows better. ``ended_at`` and the ``left_at`` of
    the participants who were present when it was interrupted move forward to ``until``;
    nothing moves backward. Returns whether anything changed.
    """
    row = await db.get(models.Session, session_id)
    if row is None or row.state is not SessionState.INTERRUPTED:
        return False
    if row.ended_at is not None and row.ended_at >= until:
        return False
    before = row.ended_at
    row.ended_at = until
    stmt = (
        update(models.Participant)
        .where(models.Participant.session_id == session_id)
        .where(models.Participant.leave_reason == "interrupted")
        .values(left_at=until)
    )
    if before is not None:
        stmt = stmt.where(models.Participant.left_at <= before)
    await db.execute(stmt)
    await db.flush()
    return True


__all__ = [
    "RunInfo",
    "VerifyData",
    "chain_head",
    "extend_interrupted",
    "known_chain_hashes",
    "runs_of",
    "save_run",
    "verify_data",
]
