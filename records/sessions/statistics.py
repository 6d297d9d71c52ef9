"""What the period report says about sessions (DOMAIN.md "Statistics")."""

import dataclasses
import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from records import models
from records.enums import (
    ParticipantRole,
    SessionKind,
)

# ---- session statistics ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SessionStatistics:
    """What the report says about sessions in a period (DOMAIN.md "Statistics").

    Attributes:
        by_kind: sessions held (went live) per kind.
        by_kind_and_level: the same per kind and level of the convening unit ("visit:community").
        visit_batches: video visits received (批次): visits that went live.
        visit_person_times: residents received (人次): resident-side participants who joined.
        leader_receptions: visits routed to the leader on duty that went live.
        training_attendance: distinct viewers per unit id across training sessions.
        visit_ratings: count per rating 1..5 given at the terminals.
    """

    by_kind: dict[str, int]
    by_kind_and_level: dict[str, int]
    visit_batches: int
    visit_person_times: int
    leader_receptions: int
    training_attendance: dict[str, int]
    visit_ratings: dict[str, int]


async def session_statistics(
    db: AsyncSession,
    *,
    start: dt.datetime,
    end: dt.datetime,
    unit_ids: Iterable[int] | None,
    as_of: dt.datetime | None = None,
) -> SessionStatistics:
    """Aggregate sessions that went live in ``[start, end)`` for the given units (None: all).

    ``as_of`` (default: ``end``, or now while the period runs) reads the records as they
    stood then, like the annual report: sessions that went live and participants who joined
    before it. A rating has no time of its own (it is given at the end of the visit); it
    counts with its session.
    """
    if as_of is None:
        as_of = min(dt.datetime.now(dt.UTC), end)
    S, U, Pt = models.Session, models.OrgUnit, models.Participant
    held = (S.started_at >= start) & (S.started_at < min(end, as_of))
    if unit_ids is not None:
        ids = list(unit_ids)
        held = held & (S.unit_id.in_(ids) | S.reception_unit_id.in_(ids))
    by_kind: dict[str, int] = {}
    by_level: dict[str, int] = {}
    rows = await db.execute(
        select(S.kind, U.level, func.count())
        .join(U, U.id == S.unit_id)
        .where(held)
        .group_by(S.kind, U.level)
    )
    for kind, level, n in rows.all():
        by_kind[kind.value] = by_kind.get(kind.value, 0) + int(n)
        by_level[f"{kind.value}:{level.value}"] = int(n)
    is_visit = held & (S.kind == SessionKind.VISIT)
    person_times = await db.scalar(
        select(func.count())
        .select_from(Pt)
        .join(S, S.id == Pt.session_id)
        .where(is_visit & (Pt.role == ParticipantRole.RESIDENT) & (Pt.joined_at < as_of))
    )
    leader = await db.scalar(
        select(func.count()).select_from(S).where(is_visit & S.routed_to_leader_id.is_not(None))
    )
    viewers = (
        select(Pt.unit_id, Pt.principal_kind, Pt.principal_id)
        .join(S, S.id == Pt.session_id)
        .where(held & (S.kind == SessionKind.TRAINING))
        .where(Pt.role.in_([ParticipantRole.VIEWER, ParticipantRole.SPEAKER]))
        .where(Pt.joined_at < as_of)
        .distinct()
        .subquery()
    )
    attendance_rows = await db.execute(
        select(viewers.c.unit_id, func.count()).group_by(viewers.c.unit_id)
    )
    ratings = await db.execute(
        select(S.rating, func.count()).where(is_visit & S.rating.is_not(None)).group_by(S.rating)
    )
    return SessionStatistics(
        by_kind=by_kind,
        by_kind_and_level=by_level,
        visit_batches=by_kind.get(SessionKind.VISIT.value, 0),
        visit_person_times=int(person_times or 0),
        leader_receptions=int(leader or 0),
        training_attendance={str(u or 0): int(n) for u, n in attendance_rows.all()},
        visit_ratings={str(r): int(n) for r, n in ratings.all()},
    )
