"""Petition item services: register, route, handle, evaluate, list what is due, backlog cases.

Every function takes an :class:`~sqlalchemy.ext.asyncio.AsyncSession` and returns frozen
dataclasses, never ORM rows. Functions flush but do not commit: the caller owns the
transaction. A :class:`Conflict` raised by a failed flush (a concurrent writer) has rolled the
session back; expected conflicts (already rated, entry exists) are checked before writing and
leave the transaction intact. State changes go through :mod:`records.lifecycle` against the
replayed history and are appended to ``item_events``; nothing in the history is ever updated.

Scope and permissions are the policy module's job; each :class:`Item` carries
``registering_unit_id``, ``handling_unit_id``, ``confidential``, ``handler_account_ids`` and
``recused_account_ids`` for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import re
import secrets
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from config.errors import Conflict, NotFound, ValidationError
from records.base import utcnow
from records.calendar import HolidayCalendar
from records.deadlines import local_date
from records.item_models import (
    MAX_REPRESENTATIVES,
    BacklogCase,
    BacklogProgress,
    BacklogUnit,
    Channel,
    ItemAttachment,
    ItemClockStop,
    ItemCoHandler,
    ItemEvent,
    ItemExtension,
    ItemHandler,
    ItemRow,
    ItemTransfer,
    ItemType,
    OriginLevel,
    Outcome,
    Petitioner,
    TransferKind,
)
from records.lifecycle import (
    STATE_LABELS_ZH,
    EventType,
    HistoryEvent,
    ItemState,
    RuleSet,
    Timeline,
    advance,
    current_deadline,
    replay,
    rule_set_for,
)
from records.lookup import format_code, new_code, normalise
from records.models import Session as SessionRow
from records.policy import ItemTarget

__all__ = [
    "ATTACHMENT_TYPES",
    "MAX_ATTACHMENT_BYTES",
    "AttachmentInfo",
    "AttachmentTooLarge",
    "AttachmentTypeRefused",
    "BacklogAttention",
    "BacklogCaseInfo",
    "StoredFile",
    "add_attachment",
    "attachment_name",
    "backlog_attention",
    "discard_attachment_file",
    "get_attachment",
    "list_attachments",
    "set_plan_due",
    "store_attachment_file",
    "DuplicateCandidate",
    "DueItem",
    "Item",
    "ItemHistoryEntry",
    "NewItem",
    "NewPetitioner",
    "PetitionerInfo",
    "ProgressEntry",
    "PublicProgress",
    "accept",
    "acknowledge",
    "add_co_handler",
    "add_progress_entry",
    "apply_event",
    "assign",
    "backlog_case_of_item",
    "evaluate",
    "extend",
    "find_possible_duplicates",
    "flag_backlog",
    "get_backlog_case",
    "get_item",
    "get_item_by_lookup_code",
    "item_history",
    "item_session_ids",
    "list_backlog_cases",
    "list_due",
    "list_items",
    "list_overdue",
    "missing_months",
    "object_to",
    "progress_entries",
    "public_progress",
    "register_item",
    "resume_clock",
    "set_handler",
    "set_outcome",
    "stop_clock",
    "transfer",
]

_LOOKUP_ATTEMPTS = 5


# --------------------------------------------------------------------------- value objects


@dataclass(frozen=True, slots=True)
class NewPetitioner:
    """A petitioner as entered at registration."""

    name: str
    id_number: str | None = None
    address: str | None = None
    phone: str | None = None
    is_representative: bool = False


@dataclass(frozen=True, slots=True)
class NewItem:
    """What is needed to register an item.

    ``confidential`` defaults to true for accusations (Art. 30). ``rule_set`` defaults from
    the registration day (2022 Regulations from 2022-05-01).
    """

    registering_unit_id: int
    type: ItemType
    channel: Channel
    request: str
    facts: str = ""
    reasons: str = ""
    category: str | None = None
    place: str | None = None
    online_platform: str | None = None
    origin_level: OriginLevel | None = None
    led_by_other_unit: bool = False
    urgent: bool = False
    major: bool = False
    confidential: bool | None = None
    anonymous: bool = False
    is_group: bool = False
    group_size: int | None = None
    petitioners: Sequence[NewPetitioner] = ()
    agent_name: str | None = None
    agent_authorisation: str | None = None
    agent_account_id: int | None = None
    subject_unit_id: int | None = None
    national_number: str | None = None
    session_id: str | None = None
    duplicate_of_id: str | None = None
    reviews_item_id: str | None = None
    rule_set: RuleSet | None = None


@dataclass(frozen=True, slots=True)
class PetitionerInfo:
    """A stored petitioner."""

    name: str
    id_number: str | None
    address: str | None
    phone: str | None
    is_representative: bool


@dataclass(frozen=True, slots=True)
class Item:
    """A petition item as the layers above see it."""

    id: str
    lookup_code: str
    national_number: str | None
    rule_set: RuleSet
    state: ItemState
    version: int
    type: ItemType
    category: str | None
    place: str | None
    request: str
    facts: str
    reasons: str
    channel: Channel
    online_platform: str | None
    origin_level: OriginLevel | None
    led_by_other_unit: bool
    urgent: bool
    major: bool
    confidential: bool
    anonymous: bool
    is_group: bool
    group_size: int | None
    petitioners: tuple[PetitionerInfo, ...]
    agent_name: str | None
    agent_authorisation: str | None
    registering_unit_id: int
    handling_unit_id: int | None
    subject_unit_id: int | None
    co_handling_unit_ids: tuple[int, ...]
    handler_account_ids: tuple[int, ...]
    recused_account_ids: tuple[int, ...]
    session_id: str | None
    duplicate_of_id: str | None
    reviews_item_id: str | None
    registered_at: dt.datetime
    outcome: Outcome | None
    carried_out: bool | None
    resolved: bool
    accepted_on_time: bool | None
    opinion_on_time: bool | None
    concluded_at: dt.datetime | None
    due_on: dt.date | None
    due_what: str | None
    due_article: str | None
    eval_acceptance: bool | None
    eval_handling: bool | None

    def target(self, *, holder_only: bool = False) -> ItemTarget:
        """What the policy needs of this item.

        ``holder_only``: as seen by the unit holding it now (lifecycle actions act for it).
        """
        handlers = frozenset(self.handler_account_ids)
        recused = frozenset(self.recused_account_ids)
        if holder_only:
            return ItemTarget(
                id=self.id,
                registering_unit_id=self.handling_unit_id or self.registering_unit_id,
                confidential=self.confidential,
                handler_account_ids=handlers,
                recused_account_ids=recused,
            )
        return ItemTarget(
            id=self.id,
            registering_unit_id=self.registering_unit_id,
            handling_unit_id=self.handling_unit_id,
            co_handling_unit_ids=frozenset(self.co_handling_unit_ids),
            confidential=self.confidential,
            handler_account_ids=handlers,
            recused_account_ids=recused,
        )


@dataclass(frozen=True, slots=True)
class ItemHistoryEntry:
    """One entry of the append-only history."""

    seq: int
    at: dt.datetime
    account_id: int | None
    type: EventType
    from_state: ItemState | None
    to_state: ItemState
    reason: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProgressStep:
    """One public step: when the item reached a state."""

    on: dt.date
    state: ItemState
    label: str


@dataclass(frozen=True, slots=True)
class PublicProgress:
    """What anyone holding the lookup code may see: no names, no content."""

    lookup_code: str
    state: ItemState
    label: str
    registered_on: dt.date
    steps: tuple[ProgressStep, ...]
    due_on: dt.date | None
    can_evaluate_acceptance: bool
    can_evaluate_handling: bool


@dataclass(frozen=True, slots=True)
class DueItem:
    """An item with a unit deadline, for due-soon and overdue lists."""

    item_id: str
    lookup_code: str
    state: ItemState
    due_unit_id: int | None
    handling_unit_id: int | None
    due_on: dt.date
    due_what: str
    due_article: str
    days_left: int
    confidential: bool


@dataclass(frozen=True, slots=True)
class DuplicateCandidate:
    """An earlier item that may be the same petition."""

    item_id: str
    lookup_code: str
    state: ItemState
    registered_at: dt.datetime
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BacklogCaseInfo:
    """A backlog case with its "five ones" and involved units."""

    id: int
    item_id: str
    leader_account_id: int
    team: str
    resolution_plan: str
    stability_plan: str
    ledger: str
    unit_ids: tuple[int, ...]
    flagged_at: dt.datetime
    #: the day the resolution plan is due (化解时限), if set
    plan_due_on: dt.date | None = None


@dataclass(frozen=True, slots=True)
class ProgressEntry:
    """A monthly progress entry of a unit on a backlog case."""

    id: int
    case_id: int
    unit_id: int
    month: dt.date
    text: str
    account_id: int | None
    written_at: dt.datetime


# --------------------------------------------------------------------------- helpers


async def _flush(session: AsyncSession, what: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(f"{what}: {exc.orig}") from exc
    except StaleDataError as exc:
        await session.rollback()
        raise Conflict(f"{what}: the item changed meanwhile, reload and retry") from exc


async def _row(session: AsyncSession, item_id: str) -> ItemRow:
    row = await session.get(ItemRow, item_id)
    if row is None:
        raise NotFound(f"no petition item {item_id!r}")
    return row


async def _to_item(session: AsyncSession, row: ItemRow) -> Item:
    petitioners = (
        await session.scalars(
            select(Petitioner).where(Petitioner.item_id == row.id).order_by(Petitioner.position)
        )
    ).all()
    co = (
        await session.scalars(
            select(ItemCoHandler.unit_id)
            .where(ItemCoHandler.item_id == row.id)
            .order_by(ItemCoHandler.unit_id)
        )
    ).all()
    handlers = (
        await session.execute(
            select(ItemHandler.account_id, ItemHandler.recused)
            .where(ItemHandler.item_id == row.id)
            .order_by(ItemHandler.account_id)
        )
    ).all()
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
            PetitionerInfo(p.name, p.id_number, p.address, p.phone, p.is_representative)
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
    )


def _history_event(ev: ItemEvent) -> HistoryEvent:
    return HistoryEvent(at=ev.at, type=EventType(ev.type), data=ev.data, account_id=ev.account_id)


async def _events(session: AsyncSession, item_id: str) -> Sequence[ItemEvent]:
    return (
        await session.scalars(
            select(ItemEvent).where(ItemEvent.item_id == item_id).order_by(ItemEvent.seq)
        )
    ).all()


def _set_derived(row: ItemRow, timeline: Timeline, calendar: HolidayCalendar) -> None:
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
    else:
        row.due_unit_id = row.handling_unit_id


def _json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = value.isoformat() if isinstance(value, dt.date) else value
    return out


def _now(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return utcnow()
    if at.tzinfo is None:
        raise ValidationError(f"naive datetime {at!r}: event times must be timezone-aware")
    return at


# --------------------------------------------------------------------------- registration


def _validate_new(new: NewItem) -> None:
    if not new.request.strip():
        raise ValidationError("an item needs a request (请求)")
    reps = [p for p in new.petitioners if p.is_representative]
    if new.is_group:
        if new.group_size is None or new.group_size < 2:
            raise ValidationError(f"a group item needs group_size >= 2, got {new.group_size!r}")
        if len(reps) > MAX_REPRESENTATIVES:
            raise ValidationError(
                f"a group names at most {MAX_REPRESENTATIVES} representatives (Art. 20), "
                f"got {len(reps)}"
            )
    elif reps:
        raise ValidationError("representatives are only for group items (Art. 20)")
    if new.anonymous and new.petitioners:
        raise ValidationError("an anonymous item records no petitioner")
    if not new.anonymous and not new.petitioners:
        raise ValidationError("a named item needs at least one petitioner")
    if (new.agent_name is None) != (new.agent_authorisation is None):
        raise ValidationError("an agent needs a written authorisation, and vice versa")
    if new.online_platform is not None and new.channel is not Channel.ONLINE:
        raise ValidationError(
            f"online_platform {new.online_platform!r} given for channel {new.channel.value!r}"
        )


async def register_item(
    session: AsyncSession,
    calendar: HolidayCalendar,
    new: NewItem,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """Register a petition item: a fresh lookup code, state ``registered``, first history entry.

    Raises:
        ValidationError: the item breaks a domain rule (e.g. more than 5 representatives).
        Conflict: a unique key clashed (national number or lookup code, after retries).
    """
    _validate_new(new)
    when = _now(at)
    rule_set = new.rule_set or rule_set_for(local_date(when))
    confidential = (
        new.confidential if new.confidential is not None else new.type is ItemType.ACCUSATION
    )
    code = ""
    for _ in range(_LOOKUP_ATTEMPTS):
        code = new_code()
        taken = await session.scalar(select(ItemRow.id).where(ItemRow.lookup_code == code))
        if taken is None:
            break
    else:  # pragma: no cover - 31**9 codes
        raise Conflict("could not draw an unused lookup code")
    row = ItemRow(
        lookup_code=code,
        national_number=new.national_number,
        rule_set=rule_set.value,
        state=ItemState.REGISTERED.value,
        type=new.type.value,
        category=new.category,
        place=new.place,
        request=new.request,
        facts=new.facts,
        reasons=new.reasons,
        channel=new.channel.value,
        online_platform=new.online_platform,
        origin_level=new.origin_level.value if new.origin_level else None,
        led_by_other_unit=new.led_by_other_unit,
        urgent=new.urgent,
        major=new.major,
        confidential=confidential,
        anonymous=new.anonymous,
        is_group=new.is_group,
        group_size=new.group_size,
        agent_name=new.agent_name,
        agent_authorisation=new.agent_authorisation,
        agent_account_id=new.agent_account_id,
        registering_unit_id=new.registering_unit_id,
        subject_unit_id=new.subject_unit_id,
        registered_by=account_id,
        session_id=new.session_id,
        registered_at=when,
        duplicate_of_id=new.duplicate_of_id,
        reviews_item_id=new.reviews_item_id,
        resolved=False,
    )
    session.add(row)
    await _flush(session, "register item")
    for position, p in enumerate(new.petitioners):
        session.add(
            Petitioner(
                item_id=row.id,
                position=position,
                name=p.name,
                id_number=p.id_number,
                address=p.address,
                phone=p.phone,
                is_representative=p.is_representative,
            )
        )
    first = HistoryEvent(at=when, type=EventType.REGISTER, account_id=account_id)
    timeline = replay([first], calendar, rule_set)
    session.add(
        ItemEvent(
            item_id=row.id,
            seq=1,
            at=when,
            account_id=account_id,
            type=EventType.REGISTER.value,
            from_state=None,
            to_state=timeline.state.value,
            reason="",
            data={"rule_set": rule_set.value},
        )
    )
    _set_derived(row, timeline, calendar)
    await _flush(session, "register item")
    return await _to_item(session, row)


async def get_item(session: AsyncSession, item_id: str) -> Item:
    """The item with id ``item_id``.

    Raises:
        NotFound: no such item.
    """
    return await _to_item(session, await _row(session, item_id))


async def _row_by_code(session: AsyncSession, lookup_code: str) -> ItemRow:
    code = normalise(lookup_code)
    row = await session.scalar(select(ItemRow).where(ItemRow.lookup_code == code))
    if row is None:
        raise NotFound(f"no petition item with lookup code {format_code(code)}")
    return row


async def get_item_by_lookup_code(session: AsyncSession, lookup_code: str) -> Item:
    """The item with this lookup code (any case, spaces or dashes).

    Raises:
        ValidationError: the code is malformed or mistyped.
        NotFound: no item has it.
    """
    return await _to_item(session, await _row_by_code(session, lookup_code))


async def item_history(session: AsyncSession, item_id: str) -> tuple[ItemHistoryEntry, ...]:
    """The full append-only history, oldest first."""
    await _row(session, item_id)
    return tuple(
        ItemHistoryEntry(
            seq=e.seq,
            at=e.at,
            account_id=e.account_id,
            type=EventType(e.type),
            from_state=ItemState(e.from_state) if e.from_state else None,
            to_state=ItemState(e.to_state),
            reason=e.reason,
            data=dict(e.data),
        )
        for e in await _events(session, item_id)
    )


# --------------------------------------------------------------------------- events


async def _append(
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
    if expected_version is not None and expected_version != row.version:
        raise Conflict(
            f"item {row.id} is at version {row.version}, not {expected_version}: reload it"
        )
    when = _now(at)
    payload = _json_safe(data or {})
    events = await _events(session, row.id)
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
    _set_derived(row, new_timeline, calendar)
    return new_timeline


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
    row = await _row(session, item_id)
    await _append(
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
    await _flush(session, f"{event_type.value} item {item_id}")
    return await _to_item(session, row)


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
) -> Item:
    row = await _row(session, item_id)
    when = _now(at)
    from_unit = row.handling_unit_id or row.registering_unit_id
    event = EventType.TRANSFER if kind is TransferKind.TRANSFER else EventType.ASSIGN
    data: dict[str, Any] = {"to_unit_id": to_unit_id, "from_unit_id": from_unit}
    if due is not None:
        data["due"] = due
    await _append(
        session,
        calendar,
        row,
        event,
        account_id=account_id,
        at=when,
        reason=reason,
        data=data,
        expected_version=None,
    )
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
    await _flush(session, f"{kind.value} item {item_id}")
    return await _to_item(session, row)


async def transfer(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    to_unit_id: int,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
) -> Item:
    """Transfer (转送) the item to the unit with authority over it."""
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
) -> Item:
    """Assign (交办) the item to a unit, with a deadline for its completion report."""
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
    row = await _row(session, item_id)
    when = _now(at)
    await _append(
        session,
        calendar,
        row,
        EventType.RECEIVE,
        account_id=account_id,
        at=when,
        reason="",
        data=None,
        expected_version=None,
    )
    (await _last_transfer(session, item_id)).acknowledged_at = when
    await _flush(session, f"acknowledge item {item_id}")
    return await _to_item(session, row)


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
    row = await _row(session, item_id)
    when = _now(at)
    await _append(
        session,
        calendar,
        row,
        EventType.RETURN,
        account_id=account_id,
        at=when,
        reason=reason,
        data=None,
        expected_version=None,
    )
    tr = await _last_transfer(session, item_id)
    tr.objection_reason = reason
    tr.objected_at = when
    # Back with the unit that routed it, which owes a new routing decision.
    row.handling_unit_id = tr.from_unit_id
    row.due_unit_id = tr.from_unit_id
    await _flush(session, f"object to item {item_id}")
    return await _to_item(session, row)


async def accept(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
    reason: str = "",
) -> Item:
    """Accept (受理) the item; the 60-day handling period starts."""
    return await apply_event(
        session, calendar, item_id, EventType.ACCEPT, account_id=account_id, at=at, reason=reason
    )


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
    row = await _row(session, item_id)
    when = _now(at)
    await _append(
        session,
        calendar,
        row,
        EventType.EXTEND,
        account_id=approved_by,
        at=when,
        reason=reason,
        data={"days": days, "approved_by": approved_by, "reason": reason},
        expected_version=None,
    )
    session.add(
        ItemExtension(
            item_id=item_id, days=days, approved_by=approved_by, reason=reason, approved_at=when
        )
    )
    await _flush(session, f"extend item {item_id}")
    return await _to_item(session, row)


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
    row = await _row(session, item_id)
    when = _now(at)
    await _append(
        session,
        calendar,
        row,
        EventType.STOP_CLOCK,
        account_id=account_id,
        at=when,
        reason=reason,
        data={"reason": reason},
        expected_version=None,
    )
    session.add(ItemClockStop(item_id=item_id, first_on=local_date(when), reason=reason))
    await _flush(session, f"stop clock of item {item_id}")
    return await _to_item(session, row)


async def resume_clock(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """Restart the re-review clock; the day of ``at`` counts again."""
    row = await _row(session, item_id)
    when = _now(at)
    timeline = await _append(
        session,
        calendar,
        row,
        EventType.RESUME_CLOCK,
        account_id=account_id,
        at=when,
        reason="",
        data=None,
        expected_version=None,
    )
    stop = await session.scalar(
        select(ItemClockStop)
        .where(ItemClockStop.item_id == item_id, ItemClockStop.last_on.is_(None))
        .order_by(ItemClockStop.id.desc())
        .limit(1)
    )
    if stop is not None:
        stop.last_on = timeline.stops[-1].last
    await _flush(session, f"resume clock of item {item_id}")
    return await _to_item(session, row)


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
    row = await _row(session, item_id)
    await _append(
        session,
        calendar,
        row,
        EventType.SET_OUTCOME,
        account_id=account_id,
        at=at,
        reason=reason,
        data={"outcome": outcome.value, "carried_out": carried_out, "resolved": resolved},
        expected_version=None,
    )
    row.outcome = outcome.value
    row.carried_out = carried_out
    row.resolved = resolved
    await _flush(session, f"set outcome of item {item_id}")
    return await _to_item(session, row)


async def add_co_handler(session: AsyncSession, item_id: str, unit_id: int) -> Item:
    """Add a co-handling unit (idempotent)."""
    row = await _row(session, item_id)
    if await session.get(ItemCoHandler, (item_id, unit_id)) is None:
        session.add(ItemCoHandler(item_id=item_id, unit_id=unit_id))
        await _flush(session, f"add co-handler to item {item_id}")
    return await _to_item(session, row)


async def set_handler(
    session: AsyncSession,
    item_id: str,
    account_id: int,
    *,
    recused: bool = False,
    reason: str = "",
) -> Item:
    """Make an account a handler of the item, or record its recusal (Art. 28)."""
    row = await _row(session, item_id)
    existing = await session.get(ItemHandler, (item_id, account_id))
    if existing is None:
        session.add(
            ItemHandler(item_id=item_id, account_id=account_id, recused=recused, reason=reason)
        )
    else:
        existing.recused = recused
        existing.reason = reason
    await _flush(session, f"set handler of item {item_id}")
    return await _to_item(session, row)


# --------------------------------------------------------------------------- petitioner side


_PHONE_DIGITS = re.compile(r"\D")
_HANDLING_DONE = frozenset(
    {
        ItemState.OPINION_ISSUED,
        ItemState.REVIEW_REQUESTED,
        ItemState.REVIEW_OPINION,
        ItemState.REREVIEW_REQUESTED,
        ItemState.REREVIEW_OPINION,
        ItemState.CONCLUDED,
    }
)
_ACCEPTED = _HANDLING_DONE | {ItemState.ACCEPTED}


async def evaluate(
    session: AsyncSession,
    calendar: HolidayCalendar,
    lookup_code: str,
    phone_last4: str,
    *,
    stage: Literal["acceptance", "handling"],
    satisfied: bool,
    at: dt.datetime | None = None,
) -> PublicProgress:
    """The petitioner rates acceptance or handling, proving the code with a phone's last 4 digits.

    Raises:
        ValidationError: malformed code, or the stage is not open yet.
        NotFound: no such code, or the digits do not match (deliberately the same error).
        Conflict: this stage was already rated.
    """
    row = await _row_by_code(session, lookup_code)
    digits = _PHONE_DIGITS.sub("", phone_last4)
    phones = (
        await session.scalars(
            select(Petitioner.phone).where(
                Petitioner.item_id == row.id, Petitioner.phone.is_not(None)
            )
        )
    ).all()
    if len(digits) != 4 or not any(_PHONE_DIGITS.sub("", p or "").endswith(digits) for p in phones):
        raise NotFound(f"no petition item with lookup code {format_code(row.lookup_code)}")
    state = ItemState(row.state)
    if stage == "acceptance":
        if state not in _ACCEPTED:
            raise ValidationError(f"acceptance cannot be rated in state '{state}'")
        if row.eval_acceptance is not None:
            raise Conflict("acceptance was already rated")
    else:
        if state not in _HANDLING_DONE:
            raise ValidationError(f"handling cannot be rated before the opinion ('{state}')")
        if row.eval_handling is not None:
            raise Conflict("handling was already rated")
    when = _now(at)
    await _append(
        session,
        calendar,
        row,
        EventType.EVALUATE,
        account_id=None,
        at=when,
        reason="",
        data={"stage": stage, "satisfied": satisfied},
        expected_version=None,
    )
    if stage == "acceptance":
        row.eval_acceptance, row.eval_acceptance_at = satisfied, when
    else:
        row.eval_handling, row.eval_handling_at = satisfied, when
    await _flush(session, "evaluate item")
    return await public_progress(session, row.lookup_code)


async def public_progress(session: AsyncSession, lookup_code: str) -> PublicProgress:
    """Progress for the petitioner's receipt page: states and dates, no personal data.

    Raises:
        ValidationError: the code is malformed or mistyped.
        NotFound: no item has it.
    """
    row = await _row_by_code(session, lookup_code)
    events = await _events(session, row.id)
    steps = tuple(
        ProgressStep(
            local_date(e.at), ItemState(e.to_state), STATE_LABELS_ZH[ItemState(e.to_state)]
        )
        for e in events
        if e.from_state != e.to_state
    )
    state = ItemState(row.state)
    return PublicProgress(
        lookup_code=format_code(row.lookup_code),
        state=state,
        label=STATE_LABELS_ZH[state],
        registered_on=local_date(row.registered_at),
        steps=steps,
        due_on=row.due_on if row.due_obligor == "unit" else None,
        can_evaluate_acceptance=state in _ACCEPTED and row.eval_acceptance is None,
        can_evaluate_handling=state in _HANDLING_DONE and row.eval_handling is None,
    )


# --------------------------------------------------------------------------- due lists


def _due_item(row: ItemRow, today: dt.date) -> DueItem:
    assert row.due_on is not None
    return DueItem(
        item_id=row.id,
        lookup_code=row.lookup_code,
        state=ItemState(row.state),
        due_unit_id=row.due_unit_id,
        handling_unit_id=row.handling_unit_id,
        due_on=row.due_on,
        due_what=row.due_what or "",
        due_article=row.due_article or "",
        days_left=(row.due_on - today).days,
        confidential=row.confidential,
    )


async def list_due(
    session: AsyncSession,
    unit_ids: Sequence[int],
    within_days: int,
    today: dt.date,
) -> list[DueItem]:
    """Items whose unit deadline falls within ``today .. today + within_days``, soonest first."""
    if within_days < 0:
        raise ValidationError(f"within_days must be >= 0, got {within_days}")
    rows = (
        await session.scalars(
            select(ItemRow)
            .where(
                ItemRow.due_unit_id.in_(list(unit_ids)),
                ItemRow.due_obligor == "unit",
                ItemRow.due_on >= today,
                ItemRow.due_on <= today + dt.timedelta(days=within_days),
            )
            .order_by(ItemRow.due_on, ItemRow.id)
        )
    ).all()
    return [_due_item(r, today) for r in rows]


async def list_overdue(
    session: AsyncSession, unit_ids: Sequence[int], today: dt.date
) -> list[DueItem]:
    """Items whose unit deadline has passed (``due_on < today``), most overdue first."""
    rows = (
        await session.scalars(
            select(ItemRow)
            .where(
                ItemRow.due_unit_id.in_(list(unit_ids)),
                ItemRow.due_obligor == "unit",
                ItemRow.due_on < today,
            )
            .order_by(ItemRow.due_on, ItemRow.id)
        )
    ).all()
    return [_due_item(r, today) for r in rows]


# --------------------------------------------------------------------------- duplicates


def _bigrams(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", text)
    return {compact[i : i + 2] for i in range(len(compact) - 1)} or (
        {compact} if compact else set()
    )


def _similarity(a: str, b: str) -> float:
    x, y = _bigrams(a), _bigrams(b)
    if not x or not y:
        return 0.0
    return len(x & y) / len(x | y)


async def find_possible_duplicates(
    session: AsyncSession,
    *,
    id_number: str | None = None,
    name: str | None = None,
    phone: str | None = None,
    request_text: str | None = None,
    unit_ids: Sequence[int] | None = None,
    since: dt.datetime | None = None,
    min_similarity: float = 0.35,
    limit: int = 20,
) -> list[DuplicateCandidate]:
    """Earlier items that may be the same petition (repeat petitions, 重复信访).

    Candidates are items of the same petitioner (identity number, or name and phone), and,
    when ``request_text`` is given, items whose request is similar (character-bigram
    Jaccard ≥ ``min_similarity``) among those registered since ``since`` (default: one year)
    in ``unit_ids`` (default: all). Best score first.
    """
    person_ids: dict[str, list[str]] = {}
    conditions = []
    if id_number:
        conditions.append(Petitioner.id_number == id_number)
    if name and phone:
        conditions.append(and_(Petitioner.name == name, Petitioner.phone == phone))
    if conditions:
        for item_id, pid in (
            await session.execute(
                select(Petitioner.item_id, Petitioner.id_number).where(or_(*conditions))
            )
        ).all():
            why = (
                "same identity number" if id_number and pid == id_number else "same name and phone"
            )
            person_ids.setdefault(item_id, []).append(why)
    text_rows: list[tuple[str, str]] = []
    if request_text:
        start = since or (utcnow() - dt.timedelta(days=365))
        q = select(ItemRow.id, ItemRow.request).where(ItemRow.registered_at >= start)
        if unit_ids is not None:
            q = q.where(ItemRow.registering_unit_id.in_(list(unit_ids)))
        # Bounded: a text-only search looks at the most recent 5,000 items.
        q = q.order_by(ItemRow.registered_at.desc()).limit(5000)
        text_rows = [(i, r) for i, r in (await session.execute(q)).all()]
    scores: dict[str, tuple[float, list[str]]] = {}
    for item_id, reasons in person_ids.items():
        scores[item_id] = (1.0, sorted(set(reasons)))
    for item_id, req in text_rows:
        sim = _similarity(request_text or "", req)
        if sim >= min_similarity:
            base, reasons = scores.get(item_id, (0.0, []))
            scores[item_id] = (base + sim, [*reasons, f"similar request ({sim:.0%})"])
    if person_ids and request_text:
        for item_id in person_ids:
            if not any(r.startswith("similar") for r in scores[item_id][1]):
                own = await session.scalar(select(ItemRow.request).where(ItemRow.id == item_id))
                sim = _similarity(request_text, own or "")
                base, reasons = scores[item_id]
                scores[item_id] = (base + sim, [*reasons, f"similar request ({sim:.0%})"])
    if not scores:
        return []
    rows = {
        r.id: r
        for r in (await session.scalars(select(ItemRow).where(ItemRow.id.in_(list(scores))))).all()
    }
    found = [
        DuplicateCandidate(
            item_id=i,
            lookup_code=rows[i].lookup_code,
            state=ItemState(rows[i].state),
            registered_at=rows[i].registered_at,
            score=round(score, 3),
            reasons=tuple(reasons),
        )
        for i, (score, reasons) in scores.items()
        if i in rows
    ]
    found.sort(key=lambda c: (-c.score, c.registered_at))
    return found[:limit]


# --------------------------------------------------------------------------- backlog cases


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
    await _row(session, item_id)
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
        flagged_at=_now(at),
        flagged_by=account_id,
        plan_due_on=plan_due_on,
    )
    session.add(case)
    await _flush(session, f"flag item {item_id} as backlog case")
    for unit_id in sorted(set(unit_ids)):
        session.add(BacklogUnit(case_id=case.id, unit_id=unit_id))
    await _flush(session, f"flag item {item_id} as backlog case")
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

    Raises:
        ValidationError: empty text, bad month, or the unit is not involved in the case.
        Conflict: the unit already wrote an entry for that month.
    """
    info = await get_backlog_case(session, case_id)
    if unit_id not in info.unit_ids:
        raise ValidationError(f"unit {unit_id} is not involved in backlog case {case_id}")
    if not text.strip():
        raise ValidationError("a progress entry needs text")
    first = _month(month)
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
        written_at=_now(at),
    )
    session.add(entry)
    await _flush(session, f"progress of unit {unit_id} for {first:%Y-%m} on case {case_id}")
    return ProgressEntry(
        id=entry.id,
        case_id=case_id,
        unit_id=unit_id,
        month=first,
        text=text,
        account_id=account_id,
        written_at=entry.written_at,
    )


async def missing_months(
    session: AsyncSession, case_id: int, *, through: dt.date
) -> dict[int, list[str]]:
    """Per involved unit, the months (``YYYY-MM``) with no progress entry.

    Months run from the month the case was flagged through the month before ``through``
    (the current month is not yet missing).
    """
    info = await get_backlog_case(session, case_id)
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


# --------------------------------------------------------------------------- listings (HTTP side)


async def list_items(
    session: AsyncSession,
    *,
    unit_ids: Sequence[int] | None,
    viewer_account_id: int,
    states: Sequence[ItemState] | None = None,
    types: Sequence[ItemType] | None = None,
    channels: Sequence[Channel] | None = None,
    registered_from: dt.datetime | None = None,
    registered_before: dt.datetime | None = None,
    urgent: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Item]:
    """Items visible to an official: in scope, confidential only to handlers, not recused.

    Args:
        session: database session.
        unit_ids: the viewer's scope; an item is in it when its registering, handling or a
            co-handling unit is (``None``: every unit, the district petition bureau).
        viewer_account_id: the official; confidential items (Art. 30) are listed only when
            they handle them, and items they are recused from (Art. 28) never.
        states: only these states.
        types: only these types.
        channels: only these channels.
        registered_from: registered at or after.
        registered_before: registered before.
        urgent: only urgent (True) or non-urgent (False) items.
        limit: at most this many (newest first), 1..500.
        offset: skip this many.
    """
    if not 1 <= limit <= 500 or offset < 0:
        raise ValidationError(f"limit 1..500 and offset >= 0 expected, got {limit}, {offset}")
    t = ItemRow
    q = select(t)
    if unit_ids is not None:
        ids = list(unit_ids)
        co = select(ItemCoHandler.item_id).where(ItemCoHandler.unit_id.in_(ids))
        q = q.where(or_(t.registering_unit_id.in_(ids), t.handling_unit_id.in_(ids), t.id.in_(co)))
    handles = select(ItemHandler.item_id).where(
        ItemHandler.account_id == viewer_account_id, ItemHandler.recused.is_(False)
    )
    recused = select(ItemHandler.item_id).where(
        ItemHandler.account_id == viewer_account_id, ItemHandler.recused.is_(True)
    )
    q = q.where(or_(t.confidential.is_(False), t.id.in_(handles)), t.id.not_in(recused))
    if states:
        q = q.where(t.state.in_([s.value for s in states]))
    if types:
        q = q.where(t.type.in_([x.value for x in types]))
    if channels:
        q = q.where(t.channel.in_([c.value for c in channels]))
    if registered_from is not None:
        q = q.where(t.registered_at >= registered_from)
    if registered_before is not None:
        q = q.where(t.registered_at < registered_before)
    if urgent is not None:
        q = q.where(t.urgent.is_(urgent))
    q = q.order_by(t.registered_at.desc(), t.id).limit(limit).offset(offset)
    rows = (await session.scalars(q)).all()
    return [await _to_item(session, r) for r in rows]


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


async def item_session_ids(session: AsyncSession, item_id: str) -> list[str]:
    """Ids of the sessions linked to an item (its registering session first), oldest first."""
    row = await _row(session, item_id)
    ids = list(
        (
            await session.scalars(
                select(SessionRow.id)
                .where(SessionRow.item_id == item_id)
                .order_by(SessionRow.created_at)
            )
        ).all()
    )
    if row.session_id and row.session_id not in ids:
        ids.insert(0, row.session_id)
    return ids


# --------------------------------------------------------------------------- attachments

#: largest attachment accepted, in bytes
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
_HEAD = 16  # bytes needed to recognise every allowed type
_ITEM_ID = re.compile(r"^[0-9a-f]{32}$")


class AttachmentTooLarge(ValidationError):
    """The upload is larger than :data:`MAX_ATTACHMENT_BYTES`."""

    code = "too_large"


class AttachmentTypeRefused(ValidationError):
    """The file's name or first bytes are not one of the allowed types."""

    code = "unsupported_media_type"


def _prefix(*heads: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(heads)


def _riff(kind: bytes) -> Callable[[bytes], bool]:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == kind


def _ftyp(head: bytes) -> bool:
    return head[4:8] == b"ftyp"  # ISO base media: MP4, MOV, M4A, 3GP, HEIC


_OLE = _prefix(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")  # .doc .xls .ppt, WPS Office
_ZIP = _prefix(b"PK\x03\x04")  # OOXML, OpenDocument, OFD (GB/T 33190)
_OGG = _prefix(b"OggS")
_EBML = _prefix(b"\x1a\x45\xdf\xa3")  # Matroska, WebM

#: extension -> (content type, check of the first bytes). The extension picks the type the
#: file is served as; the first bytes must agree, so a renamed executable is refused.
ATTACHMENT_TYPES: dict[str, tuple[str, Callable[[bytes], bool]]] = {
    ".jpg": ("image/jpeg", _prefix(b"\xff\xd8\xff")),
    ".jpeg": ("image/jpeg", _prefix(b"\xff\xd8\xff")),
    ".png": ("image/png", _prefix(b"\x89PNG\r\n\x1a\n")),
    ".gif": ("image/gif", _prefix(b"GIF87a", b"GIF89a")),
    ".webp": ("image/webp", _riff(b"WEBP")),
    ".bmp": ("image/bmp", _prefix(b"BM")),
    ".tif": ("image/tiff", _prefix(b"II*\x00", b"MM\x00*")),
    ".tiff": ("image/tiff", _prefix(b"II*\x00", b"MM\x00*")),
    ".heic": ("image/heic", _ftyp),
    ".pdf": ("application/pdf", _prefix(b"%PDF-")),
    ".ofd": ("application/ofd", _ZIP),
    ".doc": ("application/msword", _OLE),
    ".xls": ("application/vnd.ms-excel", _OLE),
    ".ppt": ("application/vnd.ms-powerpoint", _OLE),
    ".wps": ("application/vnd.ms-works", _OLE),
    ".et": ("application/vnd.ms-excel", _OLE),
    ".docx": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ZIP,
    ),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP),
    ".pptx": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ZIP,
    ),
    ".odt": ("application/vnd.oasis.opendocument.text", _ZIP),
    ".ods": ("application/vnd.oasis.opendocument.spreadsheet", _ZIP),
    ".rtf": ("application/rtf", _prefix(b"{\\rtf")),
    ".mp3": ("audio/mpeg", _prefix(b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")),
    ".wav": ("audio/wav", _riff(b"WAVE")),
    ".m4a": ("audio/mp4", _ftyp),
    ".aac": ("audio/aac", _prefix(b"\xff\xf1", b"\xff\xf9")),
    ".amr": ("audio/amr", _prefix(b"#!AMR")),
    ".ogg": ("audio/ogg", _OGG),
    ".opus": ("audio/ogg", _OGG),
    ".flac": ("audio/flac", _prefix(b"fLaC")),
    ".mp4": ("video/mp4", _ftyp),
    ".m4v": ("video/mp4", _ftyp),
    ".mov": ("video/quicktime", _ftyp),
    ".3gp": ("video/3gpp", _ftyp),
    ".webm": ("video/webm", _EBML),
    ".mkv": ("video/x-matroska", _EBML),
    ".avi": ("video/x-msvideo", _riff(b"AVI ")),
}


@dataclass(frozen=True, slots=True)
class StoredFile:
    """An uploaded file written under the attachments directory, not yet recorded."""

    item_id: str
    name: str
    relative_path: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A file attached to an item.

    Attributes:
        relative_path: where the file is under the attachments directory.
    """

    id: int
    item_id: str
    name: str
    content_type: str
    size: int
    sha256: str
    added_by: int | None
    added_at: dt.datetime
    relative_path: str


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def attachment_name(raw: str) -> tuple[str, str]:
    """The display name of an upload (directories dropped) and its content type.

    Raises:
        ValidationError: no usable name.
        AttachmentTypeRefused: the extension is not an allowed type.
    """
    name = _UNSAFE_NAME.sub("_", raw.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if not name or name in (".", ".."):
        raise ValidationError(f"an attachment needs a file name, got {raw[:60]!r}")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 199 - len(ext)] + dot + ext) if dot and len(ext) < 10 else name[:200]
    ext = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    if ext not in ATTACHMENT_TYPES:
        raise AttachmentTypeRefused(
            f"attachment {name!r}: type {ext or '(none)'!r} not allowed; allowed: "
            + " ".join(sorted(ATTACHMENT_TYPES))
        )
    return name, ATTACHMENT_TYPES[ext][0]


def _open_new(folder: Path, ext: str) -> tuple[Path, BinaryIO]:
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(5):
        path = folder / (secrets.token_hex(12) + ext)
        try:
            return path, path.open("xb")  # "x": an existing file is never overwritten
        except FileExistsError:
            continue
    raise Conflict(f"could not pick a new file name in {folder}")


def _write(f: BinaryIO, digest: Any, data: bytes) -> None:
    digest.update(data)
    f.write(data)


def _discard(path: Path, f: BinaryIO | None) -> None:
    if f is not None:
        f.close()
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty: the item's first upload failed


async def store_attachment_file(
    directory: Path,
    item_id: str,
    raw_name: str,
    chunks: AsyncIterable[bytes],
    *,
    max_bytes: int = MAX_ATTACHMENT_BYTES,
) -> StoredFile:
    """Write an upload to ``<directory>/<item_id>/<random>.<ext>``, hashing it (SHA-256).

    The name's extension must be an allowed type and the first bytes must agree; file I/O
    and hashing run in a thread. Nothing stays on disk when the upload is refused or fails.

    Raises:
        ValidationError: no name, or an empty file.
        AttachmentTypeRefused: not an allowed type, or the content is not what the name says.
        AttachmentTooLarge: more than ``max_bytes``.
    """
    if not _ITEM_ID.match(item_id):
        raise NotFound(f"no petition item {item_id[:40]!r}")
    name, content_type = attachment_name(raw_name)
    ext = "." + name.rsplit(".", 1)[-1].lower()
    check = ATTACHMENT_TYPES[ext][1]
    digest = hashlib.sha256()
    size = 0
    head = b""
    path: Path | None = None
    f: BinaryIO | None = None
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise AttachmentTooLarge(f"attachment {name!r} is larger than {max_bytes} bytes")
            if f is None:
                head += chunk
                if len(head) < _HEAD:
                    continue
                if not check(head):
                    raise AttachmentTypeRefused(
                        f"attachment {name!r}: the content is not {content_type}"
                    )
                path, f = await asyncio.to_thread(_open_new, directory / item_id, ext)
                chunk, head = head, b""
            assert f is not None  # opened above: mypy does not narrow through the tuple
            await asyncio.to_thread(_write, f, digest, chunk)
        if size == 0:
            raise ValidationError(f"attachment {name!r} is empty")
        if f is None:  # shorter than _HEAD bytes
            if not check(head):
                raise AttachmentTypeRefused(
                    f"attachment {name!r}: the content is not {content_type}"
                )
            path, opened = await asyncio.to_thread(_open_new, directory / item_id, ext)
            f = opened
            await asyncio.to_thread(_write, opened, digest, head)
        await asyncio.to_thread(f.close)
    except BaseException:
        if path is not None:
            await asyncio.to_thread(_discard, path, f)
        raise
    assert path is not None
    return StoredFile(
        item_id=item_id,
        name=name,
        relative_path=f"{item_id}/{path.name}",
        content_type=content_type,
        size=size,
        sha256=digest.hexdigest(),
    )


async def discard_attachment_file(directory: Path, stored: StoredFile) -> None:
    """Remove a stored file that could not be recorded."""
    await asyncio.to_thread(_discard, directory / stored.relative_path, None)


def _attachment_info(row: ItemAttachment) -> AttachmentInfo:
    return AttachmentInfo(
        id=row.id,
        item_id=row.item_id,
        name=row.name,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        added_by=row.added_by,
        added_at=row.added_at,
        relative_path=row.path,
    )


async def add_attachment(
    session: AsyncSession, stored: StoredFile, *, account_id: int | None
) -> AttachmentInfo:
    """Record a stored file as an attachment of its item."""
    await _row(session, stored.item_id)
    row = ItemAttachment(
        item_id=stored.item_id,
        name=stored.name,
        path=stored.relative_path,
        sha256=stored.sha256,
        size=stored.size,
        content_type=stored.content_type,
        added_by=account_id,
    )
    session.add(row)
    await _flush(session, f"attach {stored.name!r} to item {stored.item_id}")
    return _attachment_info(row)


async def list_attachments(session: AsyncSession, item_id: str) -> list[AttachmentInfo]:
    """The attachments of an item, oldest first."""
    await _row(session, item_id)
    rows = (
        await session.scalars(
            select(ItemAttachment)
            .where(ItemAttachment.item_id == item_id)
            .order_by(ItemAttachment.id)
        )
    ).all()
    return [_attachment_info(r) for r in rows]


async def get_attachment(session: AsyncSession, item_id: str, attachment_id: int) -> AttachmentInfo:
    """One attachment of an item (another item's attachment id is not found)."""
    row = await session.get(ItemAttachment, attachment_id)
    if row is None or row.item_id != item_id:
        raise NotFound(f"item {item_id} has no attachment {attachment_id}")
    return _attachment_info(row)


# --------------------------------------------------------------------------- backlog attention


@dataclass(frozen=True, slots=True)
class BacklogAttention:
    """An involved unit of a backlog case that needs attention.

    Attributes:
        missing_months: months (``YYYY-MM``) the unit has not reported on.
        plan_overdue: the case is open past its plan's due day (the same for every unit).
        days_overdue: days since the plan's due day, 0 when not overdue.
    """

    case_id: int
    item_id: str
    unit_id: int
    leader_account_id: int
    plan_due_on: dt.date | None
    plan_overdue: bool
    days_overdue: int
    missing_months: tuple[str, ...]


async def set_plan_due(
    session: AsyncSession, case_id: int, plan_due_on: dt.date | None
) -> BacklogCaseInfo:
    """Set (or clear) the day the case's resolution plan is due."""
    case = await session.get(BacklogCase, case_id)
    if case is None:
        raise NotFound(f"no backlog case {case_id}")
    case.plan_due_on = plan_due_on
    await _flush(session, f"plan due day of backlog case {case_id}")
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
