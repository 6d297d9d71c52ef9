"""The file rows of a session's recordings (``recordings``): one per recorded file."""

import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import NotFound, ValidationError
from records import models

# ---- recordings ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class RecordingInfo:
    """One recorded file."""

    id: int
    session_id: str
    participant_id: str | None
    path: str
    codec: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    frames: int
    bytes: int
    sha256: str
    state: str
    deleted: bool
    segment: int | None
    reason: str
    derived_from: str | None


def _recording(r: models.Recording) -> RecordingInfo:
    return RecordingInfo(
        r.id,
        r.session_id,
        r.participant_id,
        r.path,
        r.codec,
        r.started_at,
        r.ended_at,
        r.frames,
        r.bytes,
        r.sha256,
        r.state,
        r.deleted_at is not None,
        r.segment,
        r.reason,
        r.derived_from,
    )


async def upsert_recording(db: AsyncSession, session_id: str, path: str, **fields: Any) -> None:
    """Create or update the row of a recorded file (by path)."""
    row = await db.scalar(select(models.Recording).where(models.Recording.path == path))
    if row is None:
        row = models.Recording(session_id=session_id, path=path)
        db.add(row)
    for k, v in fields.items():
        if k not in {
            "participant_id",
            "codec",
            "started_at",
            "ended_at",
            "frames",
            "bytes",
            "sha256",
            "state",
            "deleted_at",
            "segment",
            "reason",
            "derived_from",
        }:
            raise ValidationError(f"unknown recording field {k!r}")
        setattr(row, k, v)
    await db.flush()


async def recordings_of(db: AsyncSession, session_id: str) -> list[RecordingInfo]:
    """The recorded files of a session."""
    rows = (
        await db.scalars(
            select(models.Recording)
            .where(models.Recording.session_id == session_id)
            .order_by(models.Recording.id)
        )
    ).all()
    return [_recording(r) for r in rows]


async def get_recording(db: AsyncSession, recording_id: int) -> RecordingInfo:
    """One recording row or NotFound."""
    row = await db.get(models.Recording, recording_id)
    if row is None:
        raise NotFound(f"recording {recording_id!r} not found")
    return _recording(row)
