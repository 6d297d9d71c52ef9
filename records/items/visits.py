"""Visits counted in batches and person-times, and supervision (督办) of items.

A visit record is one batch (批次) of ``persons`` person-times (人次): a walk-in visit at a
reception unit, a leader's duty reception (领导接访) or outreach visit (下访), or residents'
visit to a higher level (赴市/赴省/进京). A batch of :data:`COLLECTIVE_MIN_PERSONS` or more
is a collective visit (集体访). Records are written once and dated by when they were
recorded, so the figures as of a date are those recorded before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import ValidationError
from records.base import utcnow
from records.deadlines import CHINA_TZ
from records.item_models import (
    COLLECTIVE_MIN_PERSONS,
    ItemSupervision,
    ItemVisit,
    VisitKind,
)
from records.items.core import flush, load_row

__all__ = [
    "LEADER_KINDS",
    "KindFigures",
    "NewVisit",
    "SupervisionInfo",
    "VisitFigures",
    "VisitInfo",
    "list_supervisions",
    "list_visits",
    "record_visit",
    "supervise",
    "supervision_count",
    "visit_figures",
]

#: kinds taken by a leader, who must be named
LEADER_KINDS = frozenset({VisitKind.LEADER_RECEPTION, VisitKind.OUTREACH})
MAX_PERSONS = 10_000
_EARLIEST = dt.date(2000, 1, 1)


@dataclass(frozen=True, slots=True)
class NewVisit:
    """A batch of visitors as recorded."""

    kind: VisitKind
    unit_id: int
    visited_on: dt.date
    persons: int
    leader_account_id: int | None = None
    item_id: str | None = None
    place: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class VisitInfo:
    """A recorded batch of visitors."""

    id: int
    kind: VisitKind
    unit_id: int
    visited_on: dt.date
    persons: int
    collective: bool
    leader_account_id: int | None
    item_id: str | None
    place: str | None
    note: str
    recorded_by: int | None
    recorded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class KindFigures:
    """Batches and person-times of one kind, and how many of them were collective."""

    kind: VisitKind
    batches: int
    persons: int
    collective_batches: int
    collective_persons: int


@dataclass(frozen=True, slots=True)
class VisitFigures:
    """The visit figures of a period, one entry per kind (zeros included), in kind order."""

    start: dt.date
    end: dt.date
    as_of: dt.datetime
    kinds: tuple[KindFigures, ...]

    def of(self, kind: VisitKind) -> KindFigures:
        """The figures of ``kind``."""
        return next(k for k in self.kinds if k.kind is kind)


@dataclass(frozen=True, slots=True)
class SupervisionInfo:
    """A supervision (督办) of an item."""

    id: int
    item_id: str
    unit_id: int
    account_id: int | None
    reason: str
    due_on: dt.date | None
    at: dt.datetime


def _validate(new: NewVisit, today: dt.date) -> None:
    if not 1 <= new.persons <= MAX_PERSONS:
        raise ValidationError(f"persons={new.persons!r}: a batch has 1..{MAX_PERSONS} persons")
    if not _EARLIEST <= new.visited_on <= today:
        raise ValidationError(
            f"visited_on={new.visited_on.isoformat()}: a visit is recorded after it happened "
            f"(not after {today.isoformat()})"
        )
    if new.kind in LEADER_KINDS and new.leader_account_id is None:
        raise ValidationError(f"a visit of kind {new.kind.value!r} names the leader who took it")
    if new.kind not in LEADER_KINDS and new.leader_account_id is not None:
        raise ValidationError(
            f"a visit of kind {new.kind.value!r} names no leader; a leader's reception is "
            f"kind 'leader_reception'"
        )
    if new.kind is VisitKind.OUTREACH and not (new.place or "").strip():
        raise ValidationError("an outreach visit (下访) says where the leader went (place)")


def _info(row: ItemVisit) -> VisitInfo:
    return VisitInfo(
        id=row.id,
        kind=VisitKind(row.kind),
        unit_id=row.unit_id,
        visited_on=row.visited_on,
        persons=row.persons,
        collective=row.collective,
        leader_account_id=row.leader_account_id,
        item_id=row.item_id,
        place=row.place,
        note=row.note,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )


async def record_visit(
    session: AsyncSession,
    new: NewVisit,
    *,
    account_id: int | None,
    today: dt.date | None = None,
    at: dt.datetime | None = None,
) -> VisitInfo:
    """Record a batch of visitors.

    The caller checks that the leader is a leader and the unit is in scope.

    Raises:
        ValidationError: persons out of range, a day in the future, a leader kind without a
            leader or another kind with one, an outreach visit without a place.
        NotFound: ``item_id`` names no item.
    """
    when = at or utcnow()
    _validate(new, today or when.astimezone(CHINA_TZ).date())
    if new.item_id is not None:
        await load_row(session, new.item_id)
    row = ItemVisit(
        kind=new.kind.value,
        unit_id=new.unit_id,
        visited_on=new.visited_on,
        persons=new.persons,
        collective=new.persons >= COLLECTIVE_MIN_PERSONS,
        leader_account_id=new.leader_account_id,
        item_id=new.item_id,
        place=new.place,
        note=new.note,
        recorded_by=account_id,
        recorded_at=when,
    )
    session.add(row)
    await flush(session, "record visit")
    return _info(row)


async def list_visits(
    session: AsyncSession,
    *,
    unit_ids: Sequence[int] | None,
    start: dt.date,
    end: dt.date,
    kinds: Sequence[VisitKind] | None = None,
    limit: int = 500,
) -> list[VisitInfo]:
    """Visits on days in ``[start, end)`` of ``unit_ids`` (None: all), newest first."""
    q = select(ItemVisit).where(ItemVisit.visited_on >= start, ItemVisit.visited_on < end)
    if unit_ids is not None:
        q = q.where(ItemVisit.unit_id.in_(list(unit_ids)))
    if kinds:
        q = q.where(ItemVisit.kind.in_([k.value for k in kinds]))
    q = q.order_by(ItemVisit.visited_on.desc(), ItemVisit.id.desc()).limit(limit)
    return [_info(r) for r in (await session.scalars(q)).all()]


async def visit_figures(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None = None,
    as_of: dt.datetime | None = None,
) -> VisitFigures:
    """Batches and person-times per kind of the visits on days in ``[start, end)``.

    ``as_of``: only records written before it count (default: now), as for the item figures.
    """
    when = as_of or utcnow()
    q = (
        select(
            ItemVisit.kind,
            ItemVisit.collective,
            func.count(),
            func.coalesce(func.sum(ItemVisit.persons), 0),
        )
        .where(
            ItemVisit.visited_on >= start,
            ItemVisit.visited_on < end,
            ItemVisit.recorded_at < when,
        )
        .group_by(ItemVisit.kind, ItemVisit.collective)
    )
    if unit_ids is not None:
        q = q.where(ItemVisit.unit_id.in_(list(unit_ids)))
    sums: dict[tuple[str, bool], tuple[int, int]] = {
        (kind, bool(collective)): (int(n), int(persons))
        for kind, collective, n, persons in (await session.execute(q)).all()
    }
    kinds = []
    for kind in VisitKind:
        single = sums.get((kind.value, False), (0, 0))
        group = sums.get((kind.value, True), (0, 0))
        kinds.append(
            KindFigures(
                kind=kind,
                batches=single[0] + group[0],
                persons=single[1] + group[1],
                collective_batches=group[0],
                collective_persons=group[1],
            )
        )
    return VisitFigures(start=start, end=end, as_of=when, kinds=tuple(kinds))


async def supervise(
    session: AsyncSession,
    item_id: str,
    *,
    unit_id: int,
    account_id: int | None,
    reason: str,
    due_on: dt.date | None = None,
    at: dt.datetime | None = None,
) -> SupervisionInfo:
    """Record that ``unit_id`` supervises (督办) the item; the caller checks it is above.

    Raises:
        ValidationError: no reason, or a due day before today.
        NotFound: no such item.
    """
    if not reason.strip():
        raise ValidationError("a supervision says what is urged (reason)")
    when = at or utcnow()
    if due_on is not None and due_on < when.astimezone(CHINA_TZ).date():
        raise ValidationError(f"due_on={due_on.isoformat()} is in the past")
    await load_row(session, item_id)
    row = ItemSupervision(
        item_id=item_id,
        unit_id=unit_id,
        account_id=account_id,
        reason=reason,
        due_on=due_on,
        at=when,
    )
    session.add(row)
    await flush(session, "supervise item")
    return _supervision(row)


def _supervision(row: ItemSupervision) -> SupervisionInfo:
    return SupervisionInfo(
        id=row.id,
        item_id=row.item_id,
        unit_id=row.unit_id,
        account_id=row.account_id,
        reason=row.reason,
        due_on=row.due_on,
        at=row.at,
    )


async def list_supervisions(session: AsyncSession, item_id: str) -> list[SupervisionInfo]:
    """The item's supervisions, oldest first."""
    rows = await session.scalars(
        select(ItemSupervision)
        .where(ItemSupervision.item_id == item_id)
        .order_by(ItemSupervision.id)
    )
    return [_supervision(r) for r in rows.all()]


async def supervision_count(
    session: AsyncSession,
    *,
    start: dt.datetime,
    end: dt.datetime,
    unit_ids: Sequence[int] | None = None,
) -> tuple[int, int]:
    """Supervisions recorded in ``[start, end)`` by ``unit_ids``: (supervisions, items)."""
    q = select(func.count(), func.count(func.distinct(ItemSupervision.item_id))).where(
        ItemSupervision.at >= start, ItemSupervision.at < end
    )
    if unit_ids is not None:
        q = q.where(ItemSupervision.unit_id.in_(list(unit_ids)))
    n, distinct = (await session.execute(q)).one()
    return int(n), int(distinct)
