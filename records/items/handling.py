"""Lifecycle events of an item: routing, acceptance, extension, clock, outcome, handlers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import NotFound, ValidationError
from records.calendar import HolidayCalendar
from records.deadlines import local_date
from records.item_models import (
    ExternalOrganKind,
    ItemClockStop,
    ItemCoHandler,
    ItemEvent,
    ItemExtension,
    ItemExternalTransfer,
    ItemHandler,
    ItemRow,
    ItemTransfer,
    ItemType,
    Outcome,
    TransferKind,
)
from records.items.core import (
    event_time,
    flush,
    load_row,
    record_event,
    to_item,
)
from records.items.values import (
    Item,
)
from records.lifecycle import (
    EventType,
    Timeline,
)


async def apply_event(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    event_type: EventType,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
    data: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
) -> Item:
    """Validate an event against the lifecycle and append it to the item's history.

    For routing, extension and clock events prefer the dedicated functions (:func:`transfer`,
    :func:`extend`, ...), which also keep their side tables.

    Raises:
        NotFound: no such item.
        InvalidTransition: the event is not allowed in the item's state (nothing is written).
        ValidationError: the event breaks a rule (late, over the extension limit ...).
        Conflict: the item changed meanwhile (``expected_version`` or a concurrent writer).
    """
    return await record_event(
        session,
        calendar,
        item_id,
        event_type,
        account_id=account_id,
        at=at,
        reason=reason,
        data=data,
        expected_version=expected_version,
        what=f"{event_type.value} item {item_id}",
    )


async def _route(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    kind: TransferKind,
    to_unit_id: int,
    *,
    due: dt.date | None,
    account_id: int | None,
    at: dt.datetime | None,
    reason: str,
    handler_account_id: int | None,
) -> Item:
    row = await load_row(session, item_id)
    if row.type == ItemType.ACCUSATION.value and row.subject_unit_id == to_unit_id:
        raise ValidationError(
            f"accusation item {item_id} accuses unit {to_unit_id}: it cannot be "
            f"{'transferred' if kind is TransferKind.TRANSFER else 'assigned'} to the unit it "
            "accuses (Art. 30)"
        )
    handler = (
        None
        if handler_account_id is None
        else await session.get(ItemHandler, (item_id, handler_account_id))
    )
    if handler is not None and handler.recused:
        raise ValidationError(
            f"account {handler_account_id} is recused from item {item_id} (Art. 28): "
            "it cannot be named its handler"
        )
    when = event_time(at)
    from_unit = row.handling_unit_id or row.registering_unit_id
    event = EventType.TRANSFER if kind is TransferKind.TRANSFER else EventType.ASSIGN
    data: dict[str, Any] = {"to_unit_id": to_unit_id, "from_unit_id": from_unit}
    if due is not None:
        data["due"] = due
    if handler_account_id is not None:
        data["handler_account_id"] = handler_account_id

    async def routed(row: ItemRow, _timeline: Timeline) -> None:
        row.handling_unit_id = to_unit_id
        row.due_unit_id = to_unit_id
        session.add(
            ItemTransfer(
                item_id=row.id,
                kind=kind.value,
                from_unit_id=from_unit,
                to_unit_id=to_unit_id,
                at=when,
                account_id=account_id,
                due_on=due,
            )
        )
        if handler is None and handler_account_id is not None:
            # Named by the sender, so the receiving unit's handler sees the item at once
            # (an accusation is visible to its handlers only, Art. 30).
            session.add(ItemHandler(item_id=row.id, account_id=handler_account_id))

    return await record_event(
        session,
        calendar,
        row,
        event,
        account_id=account_id,
        at=when,
        reason=reason,
        data=data,
        after=routed,
        what=f"{kind.value} item {item_id}",
    )


async def transfer(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    to_unit_id: int,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
    handler_account_id: int | None = None,
) -> Item:
    """Transfer (转送) the item to the unit with authority over it.

    ``handler_account_id`` names the receiving unit's handler as part of the transfer.

    Raises:
        ValidationError: an accusation sent to the unit it accuses (Art. 30), or the named
            handler is recused.
    """
    return await _route(
        session,
        calendar,
        item_id,
        TransferKind.TRANSFER,
        to_unit_id,
        due=None,
        account_id=account_id,
        at=at,
        reason=reason,
        handler_account_id=handler_account_id,
    )


async def assign(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    to_unit_id: int,
    *,
    due: dt.date | None,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
    handler_account_id: int | None = None,
) -> Item:
    """Assign (交办) the item to a unit, with a deadline for its completion report.

    Raises:
        ValidationError: as :func:`transfer`.
    """
    return await _route(
        session,
        calendar,
        item_id,
        TransferKind.ASSIGN,
        to_unit_id,
        due=due,
        account_id=account_id,
        at=at,
        reason=reason,
        handler_account_id=handler_account_id,
    )


async def transfer_out(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    organ: str,
    organ_kind: ExternalOrganKind,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
) -> Item:
    """Transfer the item to an organ outside the district's tree (a name, no unit id).

    The item leaves the district's handling (``transferred_out``, terminal) and stays on
    record with its holder as handling unit.

    Raises:
        ValidationError: no organ name.
        InvalidTransition: not in a routing state (registered, returned).
    """
    name = organ.strip()
    if not name:
        raise ValidationError("a transfer out of the district names the receiving organ")
    row = await load_row(session, item_id)
    when = event_time(at)
    from_unit = row.handling_unit_id or row.registering_unit_id

    async def sent(row: ItemRow, _timeline: Timeline) -> None:
        session.add(
            ItemExternalTransfer(
                item_id=row.id,
                from_unit_id=from_unit,
                organ=name,
                organ_kind=organ_kind.value,
                at=when,
                account_id=account_id,
            )
        )

    return await record_event(
        session,
        calendar,
        row,
        EventType.TRANSFER_OUT,
        account_id=account_id,
        at=when,
        reason=reason,
        data={"organ": name, "organ_kind": organ_kind.value, "from_unit_id": from_unit},
        after=sent,
        what=f"transfer item {item_id} out of the district",
    )


async def _last_transfer(session: AsyncSession, item_id: str) -> ItemTransfer:
    tr = await session.scalar(
        select(ItemTransfer)
        .where(ItemTransfer.item_id == item_id)
        .order_by(ItemTransfer.id.desc())
        .limit(1)
    )
    if tr is None:  # pragma: no cover - the lifecycle requires a transfer first
        raise NotFound(f"item {item_id} was never transferred")
    return tr


async def acknowledge(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """The receiving unit acknowledges receipt; acceptance and objection periods start."""
    row = await load_row(session, item_id)
    when = event_time(at)

    async def received(_row: ItemRow, _timeline: Timeline) -> None:
        (await _last_transfer(session, item_id)).acknowledged_at = when

    return await record_event(
        session,
        calendar,
        row,
        EventType.RECEIVE,
        account_id=account_id,
        at=when,
        after=received,
        what=f"acknowledge item {item_id}",
    )


async def object_to(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    reason: str,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """The receiving unit objects (not within its powers) and returns the item (Art. 23).

    Raises:
        ValidationError: no reason, or later than 5 working days after receipt.
    """
    if not reason.strip():
        raise ValidationError("an objection needs a reason")
    row = await load_row(session, item_id)
    when = event_time(at)

    async def returned(row: ItemRow, _timeline: Timeline) -> None:
        tr = await _last_transfer(session, item_id)
        tr.objection_reason = reason
        tr.objected_at = when
        # Back with the unit that routed it, which owes a new routing decision.
        row.handling_unit_id = tr.from_unit_id
        row.due_unit_id = tr.from_unit_id

    return await record_event(
        session,
        calendar,
        row,
        EventType.RETURN,
        account_id=account_id,
        at=when,
        reason=reason,
        after=returned,
        what=f"object to item {item_id}",
    )


async def accept(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
    acting_unit_id: int | None = None,
) -> Item:
    """Accept (受理) the item; the 60-day handling period starts.

    A received item is accepted by its handling unit; a registered one directly by the
    registering unit, which is competent for it (no transfer to itself) and becomes the
    handling unit. ``acting_unit_id``, the unit of the accepting account, must when given
    be that competent unit: acceptance is its own act, no other unit (the reception centre,
    a unit above) records it on its behalf.

    Raises:
        ValidationError: ``acting_unit_id`` is not the competent unit.
    """
    row = await load_row(session, item_id)
    competent = row.handling_unit_id or row.registering_unit_id
    if acting_unit_id is not None and acting_unit_id != competent:
        raise ValidationError(
            f"acceptance of item {item_id} is recorded by the competent unit {competent} "
            f"itself; unit {acting_unit_id} cannot accept on its behalf"
        )

    async def accepted(row: ItemRow, _timeline: Timeline) -> None:
        if row.handling_unit_id is None:  # accepted directly by the registering unit
            row.handling_unit_id = row.registering_unit_id
            row.due_unit_id = row.registering_unit_id

    return await record_event(
        session,
        calendar,
        row,
        EventType.ACCEPT,
        account_id=account_id,
        at=at,
        reason=reason,
        after=accepted,
        what=f"accept item {item_id}",
    )


async def deliver(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    delivered_on: dt.date,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """Record the day the written opinion reached the petitioner; their window runs from it.

    Raises:
        InvalidTransition: no opinion is waiting for delivery.
        ValidationError: already delivered, or ``delivered_on`` before the opinion or after
            the day it is recorded.
    """
    return await record_event(
        session,
        calendar,
        item_id,
        EventType.DELIVER,
        account_id=account_id,
        at=at,
        data={"delivered_on": delivered_on},
        what=f"deliver the opinion of item {item_id}",
    )


async def reviewing_unit(session: AsyncSession, item_id: str) -> int | None:
    """The unit named by the item's last review request (Art. 35), if any."""
    data = await session.scalar(
        select(ItemEvent.data)
        .where(ItemEvent.item_id == item_id, ItemEvent.type == EventType.REQUEST_REVIEW.value)
        .order_by(ItemEvent.seq.desc())
        .limit(1)
    )
    unit = data.get("reviewing_unit_id") if data else None
    return unit if isinstance(unit, int) else None


async def extend(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    days: int,
    approved_by: int,
    reason: str,
    at: dt.datetime | None = None,
) -> Item:
    """Extend the handling period (≤30 days in total, approved by the unit head, Art. 34)."""
    row = await load_row(session, item_id)
    when = event_time(at)

    async def extended(_row: ItemRow, _timeline: Timeline) -> None:
        session.add(
            ItemExtension(
                item_id=item_id, days=days, approved_by=approved_by, reason=reason, approved_at=when
            )
        )

    return await record_event(
        session,
        calendar,
        row,
        EventType.EXTEND,
        account_id=approved_by,
        at=when,
        reason=reason,
        data={"days": days, "approved_by": approved_by, "reason": reason},
        after=extended,
        what=f"extend item {item_id}",
    )


async def stop_clock(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    reason: str,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """Stop the re-review clock (hearing, Art. 36) from the day of ``at``."""
    row = await load_row(session, item_id)
    when = event_time(at)

    async def stopped(_row: ItemRow, _timeline: Timeline) -> None:
        session.add(ItemClockStop(item_id=item_id, first_on=local_date(when), reason=reason))

    return await record_event(
        session,
        calendar,
        row,
        EventType.STOP_CLOCK,
        account_id=account_id,
        at=when,
        reason=reason,
        data={"reason": reason},
        after=stopped,
        what=f"stop clock of item {item_id}",
    )


async def resume_clock(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """Restart the re-review clock; the day of ``at`` counts again."""
    row = await load_row(session, item_id)
    when = event_time(at)

    async def resumed(_row: ItemRow, timeline: Timeline) -> None:
        stop = await session.scalar(
            select(ItemClockStop)
            .where(ItemClockStop.item_id == item_id, ItemClockStop.last_on.is_(None))
            .order_by(ItemClockStop.id.desc())
            .limit(1)
        )
        if stop is not None:
            stop.last_on = timeline.stops[-1].last

    return await record_event(
        session,
        calendar,
        row,
        EventType.RESUME_CLOCK,
        account_id=account_id,
        at=when,
        after=resumed,
        what=f"resume clock of item {item_id}",
    )


async def set_outcome(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    outcome: Outcome,
    carried_out: bool | None,
    resolved: bool,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
) -> Item:
    """Record the outcome (Arts. 31-33), whether it was carried out and whether resolved."""

    async def decided(row: ItemRow, _timeline: Timeline) -> None:
        row.outcome = outcome.value
        row.carried_out = carried_out
        row.resolved = resolved

    return await record_event(
        session,
        calendar,
        item_id,
        EventType.SET_OUTCOME,
        account_id=account_id,
        at=at,
        reason=reason,
        data={"outcome": outcome.value, "carried_out": carried_out, "resolved": resolved},
        after=decided,
        what=f"set outcome of item {item_id}",
    )


async def add_co_handler(session: AsyncSession, item_id: str, unit_id: int) -> Item:
    """Add a co-handling unit (idempotent)."""
    row = await load_row(session, item_id)
    if await session.get(ItemCoHandler, (item_id, unit_id)) is None:
        session.add(ItemCoHandler(item_id=item_id, unit_id=unit_id))
        await flush(session, f"add co-handler to item {item_id}")
    return await to_item(session, row)


async def set_handler(
    session: AsyncSession,
    item_id: str,
    account_id: int,
    *,
    recused: bool = False,
    reason: str = "",
) -> Item:
    """Make an account a handler of the item, or record its recusal (Art. 28)."""
    row = await load_row(session, item_id)
    existing = await session.get(ItemHandler, (item_id, account_id))
    if existing is None:
        session.add(
            ItemHandler(item_id=item_id, account_id=account_id, recused=recused, reason=reason)
        )
    else:
        existing.recused = recused
        existing.reason = reason
    await flush(session, f"set handler of item {item_id}")
    return await to_item(session, row)
