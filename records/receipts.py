"""Which terminals showed an announcement (信息发布送达): receipts written once, never changed.

A kiosk says so when it puts an announcement on its screen (``announcement.shown`` over the
WebSocket); the first time counts, later ones change nothing. The announcements page reads
them as "shown on N of M terminals", with the terminals' names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, NotFound
from records import models
from records.base import utcnow


@dataclass(frozen=True, slots=True)
class TerminalRef:
    """A terminal as a receipt names it."""

    id: int
    name: str
    unit_id: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """A terminal showed an announcement, first at ``shown_at``."""

    announcement_id: int
    terminal: TerminalRef
    shown_at: dt.datetime


async def record_shown(
    db: AsyncSession,
    announcement_id: int,
    terminal_id: int,
    *,
    publisher_units: Collection[int],
    at: dt.datetime | None = None,
) -> bool:
    """Write that a terminal showed an announcement; ``False`` when it was written before.

    Args:
        db: database session.
        announcement_id: the announcement shown.
        terminal_id: the terminal that showed it.
        publisher_units: the units whose announcements the terminal receives (its unit and
            the units above it); an announcement of another unit is not found.
        at: when (default now).

    Raises:
        NotFound: no such announcement for this terminal.
        Conflict: written at the same moment by another connection of the terminal.
    """
    ann = await db.get(models.Announcement, announcement_id)
    if ann is None or ann.unit_id not in publisher_units:
        raise NotFound(f"announcement {announcement_id} not found for terminal {terminal_id}")
    if await db.get(models.AnnouncementReceipt, (announcement_id, terminal_id)) is not None:
        return False
    db.add(
        models.AnnouncementReceipt(
            announcement_id=announcement_id, terminal_id=terminal_id, shown_at=at or utcnow()
        )
    )
    try:
        await db.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"receipt of announcement {announcement_id} on terminal {terminal_id} exists"
        ) from exc
    return True


async def receipts(db: AsyncSession, announcement_ids: Collection[int]) -> list[Receipt]:
    """The receipts of ``announcement_ids``, first shown first."""
    if not announcement_ids:
        return []
    rows = await db.execute(
        select(models.AnnouncementReceipt, models.Terminal)
        .join(models.Terminal, models.Terminal.id == models.AnnouncementReceipt.terminal_id)
        .where(models.AnnouncementReceipt.announcement_id.in_(list(announcement_ids)))
        .order_by(models.AnnouncementReceipt.shown_at, models.Terminal.id)
    )
    return [
        Receipt(r.announcement_id, TerminalRef(t.id, t.name, t.unit_id), r.shown_at)
        for r, t in rows.all()
    ]


async def active_terminals(db: AsyncSession, unit_ids: Collection[int]) -> list[TerminalRef]:
    """The terminals of ``unit_ids`` that are not revoked (those an announcement should reach)."""
    rows = await db.scalars(
        select(models.Terminal)
        .where(models.Terminal.unit_id.in_(list(unit_ids)), models.Terminal.revoked_at.is_(None))
        .order_by(models.Terminal.unit_id, models.Terminal.name)
    )
    return [TerminalRef(t.id, t.name, t.unit_id) for t in rows.all()]
