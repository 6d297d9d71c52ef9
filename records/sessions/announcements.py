"""Announcements (信息发布) and the leaders' duty roster."""

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import NotFound, ValidationError
from records import models
from records.base import utcnow

# ---- announcements -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class AnnouncementInfo:
    """An announcement (信息发布)."""

    id: int
    unit_id: int
    title: str
    body: str
    published_at: dt.datetime
    expires_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """The form the REST API, the bus and the terminals carry."""
        return {
            "id": self.id,
            "unit_id": self.unit_id,
            "title": self.title,
            "body": self.body,
            "published_at": self.published_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def _announcement(r: models.Announcement) -> AnnouncementInfo:
    return AnnouncementInfo(r.id, r.unit_id, r.title, r.body, r.published_at, r.expires_at)


async def create_announcement(
    db: AsyncSession, unit_id: int, title: str, body: str, created_by: int, expires_at: dt.datetime
) -> AnnouncementInfo:
    """Publish an announcement to the subtree of ``unit_id``."""
    if not title.strip() or len(title) > 200:
        raise ValidationError(f"announcement title {title[:40]!r}: 1-200 characters expected")
    if not body.strip() or len(body) > 5000:
        raise ValidationError("announcement body: 1-5000 characters expected")
    if expires_at <= utcnow():
        raise ValidationError(f"announcement expiry {expires_at.isoformat()} is in the past")
    row = models.Announcement(
        unit_id=unit_id,
        title=title.strip(),
        body=body.strip(),
        created_by=created_by,
        expires_at=expires_at,
    )
    db.add(row)
    await db.flush()
    return _announcement(row)


async def active_announcements(db: AsyncSession, unit_ids: Iterable[int]) -> list[AnnouncementInfo]:
    """Unexpired announcements published by any of ``unit_ids`` (a terminal's ancestors)."""
    now = utcnow()
    rows = (
        await db.scalars(
            select(models.Announcement)
            .where(models.Announcement.unit_id.in_(list(unit_ids)))
            .where(models.Announcement.expires_at > now)
            .where(models.Announcement.withdrawn_at.is_(None))
            .order_by(models.Announcement.published_at.desc())
            .limit(20)
        )
    ).all()
    return [_announcement(r) for r in rows]


@dataclasses.dataclass(frozen=True, slots=True)
class AnnouncementRecord:
    """An announcement as its list shows it: who published it and whether it was withdrawn."""

    info: AnnouncementInfo
    author_id: int
    author_name: str
    withdrawn_at: dt.datetime | None


async def list_announcements(
    db: AsyncSession, unit_ids: Iterable[int] | None, *, limit: int = 100
) -> list[AnnouncementRecord]:
    """Announcements published to ``unit_ids`` (every unit: ``None``), newest first."""
    q = (
        select(models.Announcement, models.Account.display_name)
        .join(models.Account, models.Account.id == models.Announcement.created_by)
        .order_by(models.Announcement.published_at.desc(), models.Announcement.id.desc())
        .limit(limit)
    )
    if unit_ids is not None:
        q = q.where(models.Announcement.unit_id.in_(list(unit_ids)))
    rows = (await db.execute(q)).all()
    return [
        AnnouncementRecord(_announcement(r), r.created_by, name, r.withdrawn_at) for r, name in rows
    ]


async def get_announcement(db: AsyncSession, announcement_id: int) -> AnnouncementInfo:
    """The announcement, or NotFound."""
    row = await db.get(models.Announcement, announcement_id)
    if row is None:
        raise NotFound(f"announcement {announcement_id!r} not found")
    return _announcement(row)


async def withdraw_announcement(db: AsyncSession, announcement_id: int) -> AnnouncementRecord:
    """Withdraw an announcement (terminals stop showing it); withdrawing again changes nothing."""
    row = await db.get(models.Announcement, announcement_id)
    if row is None:
        raise NotFound(f"announcement {announcement_id!r} not found")
    if row.withdrawn_at is None:
        row.withdrawn_at = utcnow()
        await db.flush()
    author = await db.get(models.Account, row.created_by)
    return AnnouncementRecord(
        _announcement(row), row.created_by, author.display_name if author else "", row.withdrawn_at
    )


# ---- duty roster -----------------------------------------------------------------------------


async def set_duty(db: AsyncSession, day: dt.date, unit_id: int, account_id: int) -> None:
    """Set the leader on duty of ``unit_id`` for ``day``."""
    row = await db.get(models.DutyRoster, (day, unit_id))
    if row is None:
        db.add(models.DutyRoster(day=day, unit_id=unit_id, account_id=account_id))
    else:
        row.account_id = account_id
    await db.flush()


async def leader_on_duty(db: AsyncSession, day: dt.date, unit_id: int) -> int | None:
    """The account id of the leader on duty, if any."""
    row = await db.get(models.DutyRoster, (day, unit_id))
    return None if row is None else row.account_id


async def duty_between(
    db: AsyncSession, start: dt.date, end: dt.date, unit_ids: Iterable[int]
) -> dict[tuple[dt.date, int], int]:
    """The roster from ``start`` to ``end`` (exclusive): (day, unit id) → the leader's account."""
    rows = await db.scalars(
        select(models.DutyRoster).where(
            models.DutyRoster.day >= start,
            models.DutyRoster.day < end,
            models.DutyRoster.unit_id.in_(list(unit_ids)),
        )
    )
    return {(r.day, r.unit_id): r.account_id for r in rows}
