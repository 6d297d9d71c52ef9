"""Registering an item and reading it back (by id, by lookup code, its history)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, ValidationError
from records.calendar import HolidayCalendar
from records.deadlines import local_date
from records.item_models import (
    MAX_REPRESENTATIVES,
    ONLINE_PLATFORMS,
    Channel,
    ItemEvent,
    ItemRow,
    ItemType,
    Petitioner,
)
from records.items.core import (
    event_time,
    flush,
    load_events,
    load_row,
    row_by_code,
    set_derived,
    to_item,
)
from records.items.values import (
    Item,
    ItemHistoryEntry,
    NewItem,
)
from records.keyring import DataKeyring, mask_id_number
from records.lifecycle import (
    EventType,
    HistoryEvent,
    ItemState,
    replay,
    rule_set_for,
)
from records.lookup import new_code

_LOOKUP_ATTEMPTS = 5


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
    if new.type is ItemType.ACCUSATION and new.subject_unit_id is None:
        # Art. 30 forbids sending an accusation to the unit it accuses: the item has to
        # say which unit that is (subject_unit_id, 被反映单位).
        raise ValidationError("an accusation (检举控告) needs the accused unit (subject_unit_id)")
    if (new.agent_name is None) != (new.agent_authorisation is None):
        raise ValidationError("an agent needs a written authorisation, and vice versa")
    if new.online_platform is not None and new.channel is not Channel.ONLINE:
        raise ValidationError(
            f"online_platform {new.online_platform!r} given for channel {new.channel.value!r}"
        )
    if new.online_platform is not None and new.online_platform not in ONLINE_PLATFORMS:
        # values stored before the list existed stay readable; new ones must be on it
        raise ValidationError(
            f"online_platform {new.online_platform!r} is not one of: {'、'.join(ONLINE_PLATFORMS)}"
        )


async def register_item(
    session: AsyncSession,
    calendar: HolidayCalendar,
    new: NewItem,
    *,
    keyring: DataKeyring,
    account_id: int | None,
    at: dt.datetime | None = None,
) -> Item:
    """Register a petition item: a fresh lookup code, state ``registered``, first history entry.

    Identity numbers are stored sealed with ``keyring``'s sealing key, with a masked copy for
    views and a keyed digest for the duplicate search.

    Raises:
        ValidationError: the item breaks a domain rule (e.g. more than 5 representatives).
        Conflict: a unique key clashed (national number or lookup code, after retries).
    """
    _validate_new(new)
    when = event_time(at)
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
        repeat=new.repeat or new.duplicate_of_id is not None,
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
    await flush(session, "register item")
    for position, p in enumerate(new.petitioners):
        session.add(
            Petitioner(
                item_id=row.id,
                position=position,
                name=p.name,
                id_number=keyring.seal(p.id_number, item_id=row.id) if p.id_number else None,
                id_number_masked=mask_id_number(p.id_number),
                id_number_digest=keyring.digest(p.id_number) if p.id_number else None,
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
    set_derived(row, timeline, calendar)
    await flush(session, "register item")
    return await to_item(session, row)


async def get_item(session: AsyncSession, item_id: str) -> Item:
    """The item with id ``item_id``.

    Raises:
        NotFound: no such item.
    """
    return await to_item(session, await load_row(session, item_id))


async def get_item_by_lookup_code(session: AsyncSession, lookup_code: str) -> Item:
    """The item with this lookup code (any case, spaces or dashes).

    Raises:
        ValidationError: the code is malformed or mistyped.
        NotFound: no item has it.
    """
    return await to_item(session, await row_by_code(session, lookup_code))


async def item_history(session: AsyncSession, item_id: str) -> tuple[ItemHistoryEntry, ...]:
    """The full append-only history, oldest first."""
    await load_row(session, item_id)
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
        for e in await load_events(session, item_id)
    )
