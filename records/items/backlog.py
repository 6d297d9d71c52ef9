"""Backlog cases (信访积案): the "five ones", monthly progress, attention lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, NotFound, ValidationError
from records.deadlines import local_date
from records.item_models import (
    BacklogCase,
    BacklogProgress,
    BacklogUnit,
    ItemCoHandler,
    ItemRow,
)
from records.items.core import (
    event_time,
    flush,
    load_row,
)
from records.items.values import (
    BacklogAttention,
    BacklogCaseInfo,
    ProgressEntry,
)
from records.lifecycle import ItemState


def _month(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.date):
        return value.replace(day=1)
    try:
        year, month = value.split("-")
        return dt.date(int(year), int(month), 1)
    except ValueError as exc:
        raise ValidationError(f"a month is written YYYY-MM, got {value!r}") from exc


def _case_info(case: BacklogCase, unit_ids: Sequence[int]) -> BacklogCaseInfo:
    return BacklogCaseInfo(
        id=case.id,
        item_id=case.item_id,
        leader_account_id=case.leader_account_id,
        team=case.team,
        resolution_plan=case.resolution_plan,
        stability_plan=case.stability_plan,
        ledger=case.ledger,
        unit_ids=tuple(sorted(unit_ids)),
        flagged_at=case.flagged_at,
        plan_due_on=case.plan_due_on,
        closed_at=case.closed_at,
        closed_by=case.closed_by,
    )


async def flag_backlog(
    session: AsyncSession,
    item_id: str,
    *,
    leader_account_id: int,
    team: str,
    resolution_plan: str,
    stability_plan: str,
    ledger: str,
    unit_ids: Sequence[int],
    account_id: int | None,
    at: dt.datetime | None = None,
    plan_due_on: dt.date | None = None,
) -> BacklogCaseInfo:
    """Flag an item as a backlog case with the "five ones" (五个一).

    ``plan_due_on`` is the day the resolution plan is to have resolved the case (化解时限).

    Raises:
        ValidationError: one of the five ones is empty, or no unit is involved.
        Conflict: the item is already a backlog case.
    """
    await load_row(session, item_id)
    for label, text in (
        ("team (一个工作专班)", team),
        ("resolution plan (一套化解方案)", resolution_plan),
        ("stability plan (一套稳控措施)", stability_plan),
        ("ledger (一份工作台账)", ledger),
    ):
        if not text.strip():
            raise ValidationError(f"a backlog case needs its {label}")
    if not unit_ids:
        raise ValidationError("a backlog case involves at least one unit")
    if await session.scalar(select(BacklogCase.id).where(BacklogCase.item_id == item_id)):
        raise Conflict(f"item {item_id} is already a backlog case")
    case = BacklogCase(
        item_id=item_id,
        leader_account_id=leader_account_id,
        team=team,
        resolution_plan=resolution_plan,
        stability_plan=stability_plan,
        ledger=ledger,
        flagged_at=event_time(at),
        flagged_by=account_id,
        plan_due_on=plan_due_on,
    )
    session.add(case)
    await flush(session, f"flag item {item_id} as backlog case")
    for unit_id in sorted(set(unit_ids)):
        session.add(BacklogUnit(case_id=case.id, unit_id=unit_id))
    await flush(session, f"flag item {item_id} as backlog case")
    return _case_info(case, unit_ids)


async def get_backlog_case(session: AsyncSession, case_id: int) -> BacklogCaseInfo:
    """A backlog case by id."""
    case = await session.get(BacklogCase, case_id)
    if case is None:
        raise NotFound(f"no backlog case {case_id}")
    units = (
        await session.scalars(select(BacklogUnit.unit_id).where(BacklogUnit.case_id == case_id))
    ).all()
    return _case_info(case, units)


async def add_progress_entry(
    session: AsyncSession,
    case_id: int,
    *,
    unit_id: int,
    month: dt.date | str,
    text: str,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> ProgressEntry:
    """A unit's monthly progress entry on a backlog case.

    A unit named in the case writes without being added again: a unit listed on the case,
    the item's handling (responsible) unit or one of its co-handling units.

    Raises:
        ValidationError: empty text, bad month, a month after the current one (of ``at``),
            the case is closed, or the unit is not involved in the case.
        Conflict: the unit already wrote an entry for that month.
    """
    info = await get_backlog_case(session, case_id)
    if unit_id not in await _named_units(session, info):
        raise ValidationError(f"unit {unit_id} is not involved in backlog case {case_id}")
    if info.closed_at is not None:
        raise ValidationError(
            f"backlog case {case_id} was closed (销号) on {local_date(info.closed_at)}: "
            "no more progress entries"
        )
    if not text.strip():
        raise ValidationError("a progress entry needs text")
    first = _month(month)
    when = event_time(at)
    this_month = local_date(when).replace(day=1)
    if first > this_month:
        raise ValidationError(
            f"progress for {first:%Y-%m} cannot be written in {this_month:%Y-%m}: "
            "a month is reported on when it has begun"
        )
    # Checked first so that the usual mistake does not cost the caller its transaction;
    # the unique constraint still guards against a concurrent writer.
    taken = await session.scalar(
        select(BacklogProgress.id).where(
            BacklogProgress.case_id == case_id,
            BacklogProgress.unit_id == unit_id,
            BacklogProgress.month == first,
        )
    )
    if taken is not None:
        raise Conflict(f"unit {unit_id} already wrote its {first:%Y-%m} entry on case {case_id}")
    entry = BacklogProgress(
        case_id=case_id,
        unit_id=unit_id,
        month=first,
        text=text,
        account_id=account_id,
        written_at=when,
    )
    session.add(entry)
    await flush(session, f"progress of unit {unit_id} for {first:%Y-%m} on case {case_id}")
    return ProgressEntry(
        id=entry.id,
        case_id=case_id,
        unit_id=unit_id,
        month=first,
        text=text,
        account_id=account_id,
        written_at=entry.written_at,
    )


async def _named_units(session: AsyncSession, info: BacklogCaseInfo) -> set[int]:
    """The units that may write progress: listed on the case, handling or co-handling."""
    named = set(info.unit_ids)
    handling = await session.scalar(
        select(ItemRow.handling_unit_id).where(ItemRow.id == info.item_id)
    )
    if handling is not None:
        named.add(handling)
    named.update(
        (
            await session.scalars(
                select(ItemCoHandler.unit_id).where(ItemCoHandler.item_id == info.item_id)
            )
        ).all()
    )
    return named


async def close_backlog(
    session: AsyncSession,
    case_id: int,
    *,
    account_id: int,
    at: dt.datetime | None = None,
) -> BacklogCaseInfo:
    """Close (销号) a backlog case whose item is concluded and resolved (化解).

    The caller checks that ``account_id`` may close it and writes the audit entry.

    Raises:
        NotFound: no such case.
        Conflict: the case is already closed.
        ValidationError: the item is not concluded, or not resolved.
    """
    case = await session.get(BacklogCase, case_id)
    if case is None:
        raise NotFound(f"no backlog case {case_id}")
    if case.closed_at is not None:
        raise Conflict(f"backlog case {case_id} is already closed (销号) since {case.closed_at}")
    row = await load_row(session, case.item_id)
    if row.state != ItemState.CONCLUDED.value:
        raise ValidationError(
            f"backlog case {case_id} cannot be closed: its item {row.id} is in state "
            f"'{row.state}', not 'concluded'"
        )
    if not row.resolved:
        raise ValidationError(
            f"backlog case {case_id} cannot be closed: its item {row.id} is concluded but "
            "not resolved (化解); record the outcome first"
        )
    case.closed_at = event_time(at)
    case.closed_by = account_id
    await flush(session, f"close backlog case {case_id}")
    return await get_backlog_case(session, case_id)


async def missing_months(
    session: AsyncSession, case_id: int, *, through: dt.date
) -> dict[int, list[str]]:
    """Per involved unit, the months (``YYYY-MM``) with no progress entry.

    Months run from the month the case was flagged through the month before ``through``
    (the current month is not yet missing). A closed case (销号) owes none.
    """
    info = await get_backlog_case(session, case_id)
    if info.closed_at is not None:
        return {unit: [] for unit in info.unit_ids}
    first = local_date(info.flagged_at).replace(day=1)
    end = through.replace(day=1)
    months: list[dt.date] = []
    m = first
    while m < end:
        months.append(m)
        m = dt.date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    written = {
        (u, mo)
        for u, mo in (
            await session.execute(
                select(BacklogProgress.unit_id, BacklogProgress.month).where(
                    BacklogProgress.case_id == case_id
                )
            )
        ).all()
    }
    return {
        unit: [f"{mo:%Y-%m}" for mo in months if (unit, mo) not in written]
        for unit in info.unit_ids
    }


async def list_backlog_cases(
    session: AsyncSession,
    *,
    leader_account_id: int | None = None,
    unit_ids: Sequence[int] | None = None,
    limit: int = 200,
) -> list[BacklogCaseInfo]:
    """Backlog cases of a leader in charge and/or involving one of ``unit_ids``, newest first."""
    q = select(BacklogCase)
    if leader_account_id is not None:
        q = q.where(BacklogCase.leader_account_id == leader_account_id)
    if unit_ids is not None:
        involved = select(BacklogUnit.case_id).where(BacklogUnit.unit_id.in_(list(unit_ids)))
        q = q.where(BacklogCase.id.in_(involved))
    cases = (await session.scalars(q.order_by(BacklogCase.flagged_at.desc()).limit(limit))).all()
    out: list[BacklogCaseInfo] = []
    for case in cases:
        units = (
            await session.scalars(select(BacklogUnit.unit_id).where(BacklogUnit.case_id == case.id))
        ).all()
        out.append(_case_info(case, units))
    return out


async def backlog_case_of_item(session: AsyncSession, item_id: str) -> BacklogCaseInfo | None:
    """The backlog case of an item, if it is one."""
    case_id = await session.scalar(select(BacklogCase.id).where(BacklogCase.item_id == item_id))
    return None if case_id is None else await get_backlog_case(session, case_id)


async def progress_entries(session: AsyncSession, case_id: int) -> list[ProgressEntry]:
    """The monthly progress entries of a backlog case, by month then unit."""
    rows = (
        await session.scalars(
            select(BacklogProgress)
            .where(BacklogProgress.case_id == case_id)
            .order_by(BacklogProgress.month, BacklogProgress.unit_id)
        )
    ).all()
    return [
        ProgressEntry(
            id=r.id,
            case_id=r.case_id,
            unit_id=r.unit_id,
            month=r.month,
            text=r.text,
            account_id=r.account_id,
            written_at=r.written_at,
        )
        for r in rows
    ]


async def set_plan_due(
    session: AsyncSession, case_id: int, plan_due_on: dt.date | None
) -> BacklogCaseInfo:
    """Set (or clear) the day the case's resolution plan is due."""
    case = await session.get(BacklogCase, case_id)
    if case is None:
        raise NotFound(f"no backlog case {case_id}")
    case.plan_due_on = plan_due_on
    await flush(session, f"plan due day of backlog case {case_id}")
    return await get_backlog_case(session, case_id)


async def backlog_attention(
    session: AsyncSession,
    *,
    unit_ids: Sequence[int] | None,
    today: dt.date,
    limit: int = 1000,
) -> list[BacklogAttention]:
    """Open backlog cases needing attention, per involved unit in ``unit_ids`` (``None``: all).

    A case is listed for a unit with missing monthly entries or when its plan is overdue; by
    unit, then most overdue first.

    A plan is overdue when its due day is before ``today``, the case is not closed and its
    item is not resolved (化解). Months missing are those of :func:`missing_months`.
    """
    cases = await list_backlog_cases(session, unit_ids=unit_ids, limit=limit)
    out: list[BacklogAttention] = []
    for info in cases:
        case = await session.get(BacklogCase, info.id)
        assert case is not None
        resolved = await session.scalar(select(ItemRow.resolved).where(ItemRow.id == info.item_id))
        open_ = case.closed_at is None and not resolved
        overdue = open_ and case.plan_due_on is not None and case.plan_due_on < today
        late = (today - case.plan_due_on).days if overdue and case.plan_due_on else 0
        missing = await missing_months(session, info.id, through=today) if open_ else {}
        for unit_id in info.unit_ids:
            if unit_ids is not None and unit_id not in unit_ids:
                continue
            months = tuple(missing.get(unit_id, ()))
            if overdue or months:
                out.append(
                    BacklogAttention(
                        case_id=info.id,
                        item_id=info.item_id,
                        unit_id=unit_id,
                        leader_account_id=info.leader_account_id,
                        plan_due_on=case.plan_due_on,
                        plan_overdue=overdue,
                        days_overdue=late,
                        missing_months=months,
                    )
                )
    out.sort(key=lambda a: (a.unit_id, -a.days_overdue, -len(a.missing_months), a.case_id))
    return out
