"""The core of every item change: load the row, append a validated event, flush, convert.

Internal to :mod:`records.items`; the layers above use the package's names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from config.errors import Conflict, NotFound, ValidationError
from records.base import utcnow
from records.calendar import HolidayCalendar
from records.item_models import (
    Channel,
    ItemCoHandler,
    ItemEvent,
    ItemHandler,
    ItemRow,
    ItemType,
    OriginLevel,
    Outcome,
    Petitioner,
)
from records.items.values import (
    Item,
    PetitionerInfo,
)
from records.lifecycle import (
    EventType,
    HistoryEvent,
    ItemState,
    RuleSet,
    Timeline,
    advance,
    current_deadline,
    replay,
)
from records.lookup import format_code, normalise

#: what runs after the event is appended and before the flush: side tables, row columns
AfterAppend = Callable[[ItemRow, Timeline], Awaitable[None]]


async def flush(session: AsyncSession, what: str) -> None:
    """Flush, turning a unique-key clash or a stale version into :class:`Conflict`.

    The session is rolled back before the conflict is raised (a concurrent writer won).
    """
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(f"{what}: {exc.orig}") from exc
    except StaleDataError as exc:
        await session.rollback()
        raise Conflict(f"{what}: the item changed meanwhile, reload and retry") from exc


async def load_row(session: AsyncSession, item_id: str) -> ItemRow:
    """The item's row.

    Raises:
        NotFound: no such item.
    """
    row = await session.get(ItemRow, item_id)
    if row is None:
        raise NotFound(f"no petition item {item_id!r}")
    return row


#: what :func:`to_item` reads besides the row: petitioners, co-handling units, handlers
Related = tuple[Sequence[Petitioner], Sequence[int], Sequence[tuple[int, bool]]]


async def load_related(session: AsyncSession, item_ids: Sequence[str]) -> dict[str, Related]:
    """Petitioners, co-handlers and handlers of many items in three queries (for listings)."""
    ids = list(item_ids)
    out: dict[str, tuple[list[Petitioner], list[int], list[tuple[int, bool]]]] = {
        i: ([], [], []) for i in ids
    }
    if not ids:
        return {}
    for p in await session.scalars(
        select(Petitioner).where(Petitioner.item_id.in_(ids)).order_by(Petitioner.position)
    ):
        out[p.item_id][0].append(p)
    for item_id, unit_id in await session.execute(
        select(ItemCoHandler.item_id, ItemCoHandler.unit_id)
        .where(ItemCoHandler.item_id.in_(ids))
        .order_by(ItemCoHandler.unit_id)
    ):
        out[item_id][1].append(unit_id)
    for item_id, account_id, recused in await session.execute(
        select(ItemHandler.item_id, ItemHandler.account_id, ItemHandler.recused)
        .where(ItemHandler.item_id.in_(ids))
        .order_by(ItemHandler.account_id)
    ):
        out[item_id][2].append((account_id, recused))
    return dict(out)


async def to_item(session: AsyncSession, row: ItemRow, related: Related | None = None) -> Item:
    """The row as the layers above see it, with petitioners, co-handlers and handlers.

    ``related``: those already read (:func:`load_related`), else they are read here.
    """
    if related is None:
        related = (await load_related(session, [row.id]))[row.id]
    petitioners, co, handlers = related
    return Item(
        id=row.id,
        lookup_code=row.lookup_code,
        national_number=row.national_number,
        rule_set=RuleSet(row.rule_set),
        state=ItemState(row.state),
        version=row.version,
        type=ItemType(row.type),
        category=row.category,
        place=row.place,
        request=row.request,
        facts=row.facts,
        reasons=row.reasons,
        channel=Channel(row.channel),
        online_platform=row.online_platform,
        origin_level=OriginLevel(row.origin_level) if row.origin_level else None,
        led_by_other_unit=row.led_by_other_unit,
        urgent=row.urgent,
        major=row.major,
        confidential=row.confidential,
        anonymous=row.anonymous,
        is_group=row.is_group,
        group_size=row.group_size,
        petitioners=tuple(
            PetitionerInfo(p.name, p.id_number_masked, p.address, p.phone, p.is_representative)
            for p in petitioners
        ),
        agent_name=row.agent_name,
        agent_authorisation=row.agent_authorisation,
        registering_unit_id=row.registering_unit_id,
        handling_unit_id=row.handling_unit_id,
        subject_unit_id=row.subject_unit_id,
        co_handling_unit_ids=tuple(co),
        handler_account_ids=tuple(a for a, recused in handlers if not recused),
        recused_account_ids=tuple(a for a, recused in handlers if recused),
        session_id=row.session_id,
        duplicate_of_id=row.duplicate_of_id,
        reviews_item_id=row.reviews_item_id,
        registered_at=row.registered_at,
        outcome=Outcome(row.outcome) if row.outcome else None,
        carried_out=row.carried_out,
        resolved=row.resolved,
        accepted_on_time=row.accepted_on_time,
        opinion_on_time=row.opinion_on_time,
        concluded_at=row.concluded_at,
        due_on=row.due_on,
        due_what=row.due_what,
        due_article=row.due_article,
        eval_acceptance=row.eval_acceptance,
        eval_handling=row.eval_handling,
        eval_acceptance_by=row.eval_acceptance_by,
        eval_handling_by=row.eval_handling_by,
        repeat=row.repeat,
    )


def _history_event(ev: ItemEvent) -> HistoryEvent:
    return HistoryEvent(at=ev.at, type=EventType(ev.type), data=ev.data, account_id=ev.account_id)


async def load_events(session: AsyncSession, item_id: str) -> Sequence[ItemEvent]:
    """The item's history rows, oldest first."""
    return (
        await session.scalars(
            select(ItemEvent).where(ItemEvent.item_id == item_id).order_by(ItemEvent.seq)
        )
    ).all()


def set_derived(row: ItemRow, timeline: Timeline, calendar: HolidayCalendar) -> None:
    """Rewrite the columns derived from the history (state, due date, on-time flags)."""
    row.state = timeline.state.value
    row.accepted_on_time = timeline.accepted_on_time
    row.opinion_on_time = timeline.opinion_on_time
    deadline = current_deadline(timeline, calendar)
    row.due_on = deadline.due if deadline else None
    row.due_what = deadline.what if deadline else None
    row.due_article = deadline.article if deadline else None
    row.due_obligor = deadline.obligor if deadline else None
    if timeline.state in (ItemState.REGISTERED,):
        row.due_unit_id = row.registering_unit_id
    elif (
        timeline.state in (ItemState.REVIEW_REQUESTED, ItemState.REREVIEW_REQUESTED)
        and timeline.reviewing_unit_id is not None
    ):
        # the review opinion is owed by the organ one level up (Arts. 35-36)
        row.due_unit_id = timeline.reviewing_unit_id
    else:
        row.due_unit_id = row.handling_unit_id


def _json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = value.isoformat() if isinstance(value, dt.date) else value
    return out


def event_time(at: dt.datetime | None) -> dt.datetime:
    """``at``, or now when it is ``None``.

    Raises:
        ValidationError: ``at`` is naive.
    """
    if at is None:
        return utcnow()
    if at.tzinfo is None:
        raise ValidationError(f"naive datetime {at!r}: event times must be timezone-aware")
    return at


async def row_by_code(session: AsyncSession, lookup_code: str) -> ItemRow:
    """The row of the item with this lookup code (any case, spaces or dashes).

    Raises:
        ValidationError: the code is malformed or mistyped.
        NotFound: no item has it.
    """
    code = normalise(lookup_code)
    row = await session.scalar(select(ItemRow).where(ItemRow.lookup_code == code))
    if row is None:
        raise NotFound(f"no petition item with lookup code {format_code(code)}")
    return row


async def append_event(
    session: AsyncSession,
    calendar: HolidayCalendar,
    row: ItemRow,
    event_type: EventType,
    *,
    account_id: int | None,
    at: dt.datetime | None,
    reason: str,
    data: Mapping[str, Any] | None,
    expected_version: int | None,
) -> Timeline:
    """Validate an event against the replayed history and append it; rewrite derived columns.

    Nothing is flushed. Returns the new timeline.

    Raises:
        Conflict: ``expected_version`` is not the row's version.
        InvalidTransition: the event is not allowed in the item's state (nothing is written).
        ValidationError: the event breaks a rule, or ``at`` is naive.
    """
    if expected_version is not None and expected_version != row.version:
        raise Conflict(
            f"item {row.id} is at version {row.version}, not {expected_version}: reload it"
        )
    when = event_time(at)
    payload = _json_safe(data or {})
    events = await load_events(session, row.id)
    timeline = replay([_history_event(e) for e in events], calendar, RuleSet(row.rule_set))
    event = HistoryEvent(at=when, type=event_type, data=payload, account_id=account_id)
    # Validates; raises InvalidTransition / ValidationError before anything is written.
    new_timeline = advance(timeline, event, calendar)
    session.add(
        ItemEvent(
            item_id=row.id,
            seq=(events[-1].seq if events else 0) + 1,
            at=when,
            account_id=account_id,
            type=event_type.value,
            from_state=timeline.state.value,
            to_state=new_timeline.state.value,
            reason=reason,
            data=payload,
        )
    )
    if new_timeline.state is ItemState.CONCLUDED and row.concluded_at is None:
        row.concluded_at = when
    set_derived(row, new_timeline, calendar)
    return new_timeline


async def record_event(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item: str | ItemRow,
    event_type: EventType,
    *,
    account_id: int | None,
    at: dt.datetime | None,
    reason: str = "",
    data: Mapping[str, Any] | None = None,
    expected_version: int | None = None,
    after: AfterAppend | None = None,
    what: str,
) -> Item:
    """The one path of a lifecycle change: row → append → side effects → flush → convert.

    Args:
        session: database session (flushed, not committed).
        calendar: the holiday calendar deadlines are counted in.
        item: the item's id, or its row when the caller needed it before the event.
        event_type: the event appended to the history.
        account_id: who acted.
        at: when (``None``: now).
        reason: the reason written with the event.
        data: the event's data (dates become ISO strings).
        expected_version: refuse when the item is at another version.
        after: what else the change writes (side tables, columns), run after the append
            and before the flush.
        what: how a failed flush names the change in its :class:`Conflict`.

    Raises:
        NotFound: no such item.
        InvalidTransition: the event is not allowed in the item's state (nothing is written).
        ValidationError: the event breaks a rule (late, over the extension limit ...).
        Conflict: the item changed meanwhile (``expected_version`` or a concurrent writer).
    """
    row = item if isinstance(item, ItemRow) else await load_row(session, item)
    timeline = await append_event(
        session,
        calendar,
        row,
        event_type,
        account_id=account_id,
        at=at,
        reason=reason,
        data=data,
        expected_version=expected_version,
    )
    if after is not None:
        await after(row, timeline)
    await flush(session, what)
    return await to_item(session, row)
