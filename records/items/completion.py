"""Part-concluded items (部分办结) and completion reports awaiting confirmation (已上报待确认).

:func:`conclude_part` records a written answer to part of the requests; the handling period
runs on from the acceptance. :func:`report_completion` sends an assigned item's completion
report to the assigning body (kept on the assignment's row, ``item_transfers``) and
:func:`confirm_completion` / :func:`return_report` are that body's answer. The rules are in
:mod:`records.lifecycle`'s table; who may act as the assigning body is the web layer's check
(:func:`assigning_unit` names it).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.calendar import HolidayCalendar
from records.item_models import ItemRow, ItemTransfer, OriginLevel, TransferKind
from records.items.core import event_time, load_row, record_event
from records.items.values import Item
from records.lifecycle import EventType, Timeline

__all__ = [
    "assigning_unit",
    "conclude_part",
    "confirm_completion",
    "report_completion",
    "return_report",
]


async def _last_assignment(session: AsyncSession, item_id: str) -> ItemTransfer | None:
    last = await session.scalar(
        select(ItemTransfer)
        .where(ItemTransfer.item_id == item_id)
        .order_by(ItemTransfer.id.desc())
        .limit(1)
    )
    return last if last is not None and last.kind == TransferKind.ASSIGN.value else None


async def assigning_unit(session: AsyncSession, item_id: str) -> int | None:
    """The unit that assigned (交办) the item by its last routing; ``None`` if not assigned."""
    last = await _last_assignment(session, item_id)
    return last.from_unit_id if last is not None else None


async def conclude_part(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    decision: str,
    account_id: int | None,
    reason: str = "",
    at: dt.datetime | None = None,
) -> Item:
    """Record the written answer to part of the requests (部分办结).

    Raises:
        InvalidTransition: the item is not accepted.
    """
    return await record_event(
        session,
        calendar,
        item_id,
        EventType.CONCLUDE_PART,
        account_id=account_id,
        at=at,
        reason=reason,
        data={"decision": decision},
        what=f"part-conclude item {item_id}",
    )


async def report_completion(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    report: str,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """Send the completion report of an item to the body that assigned it (已上报待确认).

    An item assigned within the district reports to the assigning unit (the report is kept
    with the assignment); one assigned from above the district (an origin level) to that
    body, outside the tree.

    Raises:
        InvalidTransition: no opinion issued yet.
        ValidationError: the item was neither assigned nor assigned from above.
    """
    row = await load_row(session, item_id)
    when = event_time(at)
    assignment = await _last_assignment(session, item_id)
    from_above = row.origin_level in {lv.value for lv in OriginLevel}

    async def keep(_row: ItemRow, _timeline: Timeline) -> None:
        if assignment is not None:
            assignment.completion_report = report
            assignment.reported_at = when

    return await record_event(
        session,
        calendar,
        row,
        EventType.REPORT,
        account_id=account_id,
        at=when,
        reason=report,
        data={"from_above": from_above} if from_above else None,
        after=keep,
        what=f"report item {item_id}",
    )


async def confirm_completion(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    account_id: int | None,
    petitioner_waived: bool = False,
    reason: str = "",
    at: dt.datetime | None = None,
) -> Item:
    """The assigning body confirms the reported completion: the item is concluded (办结).

    Raises:
        InvalidTransition: nothing reported.
        ValidationError: the petitioner's review window is still open and not waived.
    """
    return await record_event(
        session,
        calendar,
        item_id,
        EventType.CONFIRM,
        account_id=account_id,
        at=at,
        reason=reason,
        data={"petitioner_waived": petitioner_waived},
        what=f"confirm item {item_id}",
    )


async def return_report(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    reason: str,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """The assigning body does not confirm the report: the unit handles it further."""
    return await record_event(
        session,
        calendar,
        item_id,
        EventType.RETURN_REPORT,
        account_id=account_id,
        at=at,
        reason=reason,
        what=f"return the report of item {item_id}",
    )
