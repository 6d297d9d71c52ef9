"""The petitioner's side: progress by lookup code and evaluation (no login, no names)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config.errors import Conflict, NotFound, ValidationError
from records.calendar import HolidayCalendar
from records.deadlines import local_date
from records.item_models import (
    ItemRow,
    Petitioner,
)
from records.items.core import (
    append_event,
    event_time,
    flush,
    load_events,
    load_row,
    row_by_code,
    to_item,
)
from records.items.values import (
    Item,
    ProgressStep,
    PublicProgress,
)
from records.lifecycle import (
    STATE_LABELS_ZH,
    EventType,
    ItemState,
)
from records.lookup import format_code

_PHONE_DIGITS = re.compile(r"\D")
_HANDLING_DONE = frozenset(
    {
        ItemState.OPINION_ISSUED,
        ItemState.REPORTED,
        ItemState.REVIEW_REQUESTED,
        ItemState.REVIEW_OPINION,
        ItemState.REREVIEW_REQUESTED,
        ItemState.REREVIEW_OPINION,
        ItemState.CONCLUDED,
    }
)
_ACCEPTED = _HANDLING_DONE | {ItemState.ACCEPTED, ItemState.PART_CONCLUDED}


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
    row = await row_by_code(session, lookup_code)
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
    await _rate(session, calendar, row, stage, satisfied, account_id=None, note="", at=at)
    return await public_progress(session, row.lookup_code)


async def record_evaluation(
    session: AsyncSession,
    calendar: HolidayCalendar,
    item_id: str,
    *,
    account_id: int,
    stage: Literal["acceptance", "handling"],
    satisfied: bool,
    note: str,
    at: dt.datetime | None = None,
) -> Item:
    """Staff record the rating of a petitioner who has no phone to rate with (e.g. by letter).

    The history entry names the account and says ``recorded_by_staff``; the item keeps the
    account in ``eval_*_by``, so reports can tell these ratings apart.

    Raises:
        ValidationError: a petitioner has a phone (they rate themselves), no ``note`` on how
            the rating was given, or the stage is not open yet.
        Conflict: this stage was already rated.
    """
    if not note.strip():
        raise ValidationError("say how the petitioner gave the rating (note), e.g. 来信表示满意")
    row = await load_row(session, item_id)
    has_phone = await session.scalar(
        select(Petitioner.id).where(Petitioner.item_id == row.id, Petitioner.phone.is_not(None))
    )
    if has_phone is not None:
        raise ValidationError(
            "the petitioner has a phone and rates with the lookup code; staff record a rating "
            "only for a petitioner without a phone"
        )
    await _rate(session, calendar, row, stage, satisfied, account_id=account_id, note=note, at=at)
    return await to_item(session, row)


async def _rate(
    session: AsyncSession,
    calendar: HolidayCalendar,
    row: ItemRow,
    stage: Literal["acceptance", "handling"],
    satisfied: bool,
    *,
    account_id: int | None,
    note: str,
    at: dt.datetime | None,
) -> None:
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
    when = event_time(at)
    data: dict[str, object] = {"stage": stage, "satisfied": satisfied}
    if account_id is not None:
        data["recorded_by_staff"] = True
    await append_event(
        session,
        calendar,
        row,
        EventType.EVALUATE,
        account_id=account_id,
        at=when,
        reason=note,
        data=data,
        expected_version=None,
    )
    if stage == "acceptance":
        row.eval_acceptance, row.eval_acceptance_at = satisfied, when
        row.eval_acceptance_by = account_id
    else:
        row.eval_handling, row.eval_handling_at = satisfied, when
        row.eval_handling_by = account_id
    await flush(session, "evaluate item")


async def public_progress(session: AsyncSession, lookup_code: str) -> PublicProgress:
    """Progress for the petitioner's receipt page: states and dates, no personal data.

    Raises:
        ValidationError: the code is malformed or mistyped.
        NotFound: no item has it.
    """
    row = await row_by_code(session, lookup_code)
    events = await load_events(session, row.id)
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
        due_what=row.due_what if row.due_obligor == "unit" else None,
    )
