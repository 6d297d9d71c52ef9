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
    Petitioner,
)
from records.items.core import (
    append_event,
    event_time,
    flush,
    load_events,
    row_by_code,
)
from records.items.values import (
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
    await append_event(
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
    await flush(session, "evaluate item")
    return await public_progress(session, row.lookup_code)


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
    )
