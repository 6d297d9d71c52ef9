"""The statutory lifecycle of a petition item: states, events, transitions and deadlines.

Table-driven and pure: :func:`advance` folds one event into a :class:`Timeline`,
:func:`replay` folds a whole append-only history, :func:`open_deadlines` and
:func:`current_deadline` say what is due, by when and under which article. Nothing here
touches the database; ``records/items/`` persists what these functions accept.

::

    registered ─► transferred | assigned | diverted | not_accepted        (≤15 d, Art. 22)
    registered ─► accepted               (the registering unit is competent: no self-transfer)
    transferred ─► received                 (≤15 d even if never acknowledged, Art. 23(3))
    assigned ─► received
    received ─► returned (objection ≤5 working days, Art. 23) | accepted (≤15 d)
    received ─► not_accepted (written notice) | diverted (legal procedure, Art. 31)
    registered / returned ─► transferred_out (an organ outside the district: city, court ...)
    returned ─► transferred | assigned | diverted | not_accepted          (≤15 d, Art. 22)
    accepted ─► opinion_issued                          (≤60 d, +≤30 d extension, Art. 34)
    opinion_issued ─► review_requested (petitioner ≤30 d from delivery) | concluded
    review_requested ─► review_opinion                                    (≤30 d, Art. 35)
    review_opinion ─► rereview_requested (petitioner ≤30 d) | concluded
    rereview_requested ─► rereview_opinion                  (≤30 d, hearings excluded, Art. 36)
    rereview_opinion ─► concluded
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from config.errors import InvalidTransition, ValidationError
from records.calendar import HolidayCalendar
from records.deadlines import ClockStop, Extension, check_extension, local_date
from records.item_periods import (
    ARTICLES,
    Deadline,
    current_deadline,
    open_deadlines,
    period_due,
    window_due,
)
from records.item_states import (
    ANNOTATION_STATES,
    RULES_2022_EFFECTIVE,
    STATE_LABELS_ZH,
    TERMINAL_STATES,
    TRANSITIONS,
    EventType,
    HistoryEvent,
    ItemState,
    RuleSet,
    Timeline,
    allowed_events,
    next_state,
    rule_set_for,
)

__all__ = [
    "ANNOTATION_STATES",
    "ARTICLES",
    "RULES_2022_EFFECTIVE",
    "STATE_LABELS_ZH",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Deadline",
    "EventType",
    "HistoryEvent",
    "ItemState",
    "RuleSet",
    "Timeline",
    "advance",
    "allowed_events",
    "current_deadline",
    "next_state",
    "open_deadlines",
    "replay",
    "rule_set_for",
    "start",
]

S = ItemState
E = EventType


def _int(data: Mapping[str, Any], key: str, event: EventType) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"'{event}' needs an integer '{key}', got {value!r}")
    return value


def start(event: HistoryEvent, rule_set: RuleSet | None = None) -> Timeline:
    """The timeline of a newly registered item.

    Args:
        event: the ``register`` event.
        rule_set: the rule set; by default chosen from the registration day.
    """
    if event.type is not E.REGISTER:
        raise InvalidTransition(f"the first event must be 'register', got '{event.type}'")
    day = local_date(event.at)
    return Timeline(
        rule_set=rule_set or rule_set_for(day),
        state=S.REGISTERED,
        since=day,
        registered_on=day,
    )


def advance(
    timeline: Timeline, event: HistoryEvent, calendar: HolidayCalendar, *, recorded: bool = False
) -> Timeline:
    """Apply one event to a timeline and return the new one (the old is unchanged).

    ``recorded`` is for an event already in the history (:func:`replay`): the rules of
    issue 17 (one extension, approved in time; delivery between opinion and record; a
    request not before the delivery; the review opinion from the reviewing unit) judge a
    new event only. A history written before them, or one whose periods a holiday notice
    imported later has moved, still replays: the state of a filed item is not re-judged.

    Raises:
        InvalidTransition: the event is not allowed in the current state.
        ValidationError: the event is allowed but breaks a rule (late review request,
            extension over 30 days, clock stop misuse, event dated before the last one).
    """
    t = timeline
    target = next_state(t.state, event.type)
    day = local_date(event.at)
    if day < t.since:
        raise ValidationError(
            f"'{event.type}' dated {day} is before the last state change on {t.since}"
        )
    data = event.data
    match event.type:
        case E.EXTEND:
            ext = Extension(
                days=_int(data, "days", event.type),
                approved_by=_int(data, "approved_by", event.type),
                reason=str(data.get("reason") or ""),
                approved_on=day,
            )
            if t.extensions and not recorded:
                # Art. 34 grants one extension of up to 30 days, approved once by the head
                # of the unit; a second approval is not an extension the law knows, even
                # when the total stays within 30 days (docs/petition-items.md).
                first = t.extensions[0]
                raise ValidationError(
                    f"extension of {ext.days} days refused: the handling period was already "
                    f"extended by {first.days} days on {first.approved_on}; Art. 34 allows "
                    "one extension (at most 30 days)"
                )
            check_extension(t.extensions, ext)
            opinion_period_due = period_due(calendar, t, "opinion")
            if not recorded and opinion_period_due is not None and day > opinion_period_due:
                raise ValidationError(
                    f"extension approved on {day} is too late: the 60-day handling period "
                    f"ended on {opinion_period_due} ({ARTICLES[t.rule_set]['opinion']})"
                )
            return replace(t, extensions=(*t.extensions, ext))
        case E.STOP_CLOCK:
            if t.stops and t.stops[-1].last is None:
                raise ValidationError(f"the clock is already stopped since {t.stops[-1].first}")
            stop = ClockStop(first=day, last=None, reason=str(data.get("reason") or ""))
            return replace(t, stops=(*t.stops, stop))
        case E.RESUME_CLOCK:
            if not t.stops or t.stops[-1].last is not None:
                raise ValidationError("the clock is not stopped")
            open_stop = t.stops[-1]
            # The day of resumption counts again; the last stopped day is the day before,
            # or the stop day itself for a hearing that ends on the day it starts.
            last = max(open_stop.first, day - dt.timedelta(days=1))
            closed = ClockStop(first=open_stop.first, last=last, reason=open_stop.reason)
            return replace(t, stops=(*t.stops[:-1], closed))
        case E.DELIVER:
            # the opinion being delivered: after a completion report, still the opinion's day
            opinion_day = t.since
            if t.state in (S.OPINION_ISSUED, S.REPORTED) and t.opinion_on is not None:
                opinion_day = t.opinion_on
            if t.delivered_on is not None and not recorded:
                raise ValidationError(
                    f"the opinion of {opinion_day} was already delivered on {t.delivered_on}"
                )
            raw = data.get("delivered_on")
            try:
                delivered = dt.date.fromisoformat(str(raw))
            except ValueError as exc:
                raise ValidationError(
                    f"'deliver' needs an ISO 'delivered_on', got {raw!r}"
                ) from exc
            if not recorded and not opinion_day <= delivered <= day:
                raise ValidationError(
                    f"delivery on {delivered} must lie between the opinion of {opinion_day} "
                    f"and the day it is recorded, {day}"
                )
            return replace(t, delivered_on=delivered)
        case E.REQUEST_REVIEW | E.REQUEST_REREVIEW:
            what = "review_request" if event.type is E.REQUEST_REVIEW else "rereview_request"
            if not recorded and t.delivered_on is not None and day < t.delivered_on:
                raise ValidationError(
                    f"'{event.type}' dated {day} is before the opinion was delivered on "
                    f"{t.delivered_on}"
                )
            due = window_due(t, calendar, what)
            if day > due:
                raise ValidationError(
                    f"'{event.type}' on {day} is too late: the window ended on {due} "
                    f"({ARTICLES[t.rule_set][what]})"
                )
        case E.RETURN:
            object_due = period_due(calendar, t, "object")
            assert object_due is not None
            if day > object_due:
                raise ValidationError(
                    f"objection on {day} is too late: it had to be raised by {object_due} "
                    f"({ARTICLES[t.rule_set]['object']})"
                )
        case E.ISSUE_REVIEW_OPINION | E.ISSUE_REREVIEW_OPINION:
            by = data.get("by_unit_id")
            if (
                not recorded
                and t.reviewing_unit_id is not None
                and by is not None
                and by != t.reviewing_unit_id
            ):
                article = "Art. 35" if event.type is E.ISSUE_REVIEW_OPINION else "Art. 36"
                raise ValidationError(
                    f"the {'review' if article == 'Art. 35' else 're-review'} is by unit "
                    f"{t.reviewing_unit_id}, the organ one level up ({article}); unit {by} "
                    "cannot issue its opinion"
                )
        case E.REPORT if not recorded and not (t.assigned or data.get("from_above")):
            raise ValidationError(
                "only an assigned (交办) item, or one assigned from above the district, "
                "reports its completion for confirmation; conclude this one"
            )
        case E.CONCLUDE | E.CONFIRM if t.state in (S.OPINION_ISSUED, S.REPORTED, S.REVIEW_OPINION):
            review = t.state is not S.REVIEW_OPINION
            due = window_due(t, calendar, "review_request" if review else "rereview_request")
            if day <= due and not data.get("petitioner_waived"):
                raise ValidationError(
                    f"cannot conclude on {day}: the petitioner may still ask for a "
                    f"{'review' if review else 're-review'} until {due} "
                    "(set petitioner_waived if they declined in writing)"
                )
        case _:
            pass
    if target is t.state:  # other annotations change nothing the deadlines depend on
        return t
    changes: dict[str, Any] = {"state": target, "since": day, "delivered_on": None}
    match event.type:
        case E.REPORT | E.RETURN_REPORT:
            # the same opinion, delivered or not: its review window runs on
            changes["delivered_on"] = t.delivered_on
        case E.ASSIGN:
            due_raw = data.get("due")
            if due_raw is not None:
                try:
                    changes["assignment_due"] = dt.date.fromisoformat(str(due_raw))
                except ValueError as exc:
                    raise ValidationError(
                        f"assignment 'due' must be an ISO date, got {due_raw!r}"
                    ) from exc
            changes["assigned"] = True
        case E.TRANSFER:
            changes["assignment_due"] = None
            changes["assigned"] = False
        case E.REQUEST_REVIEW | E.REQUEST_REREVIEW:
            reviewer = data.get("reviewing_unit_id")
            if reviewer is not None:
                changes["reviewing_unit_id"] = _int(data, "reviewing_unit_id", event.type)
        case E.RECEIVE:
            changes["received_on"] = day
        case E.ACCEPT:
            accept_due = period_due(calendar, t, "accept")
            changes["accepted_on"] = day
            changes["accepted_on_time"] = accept_due is not None and day <= accept_due
        case E.ISSUE_OPINION:
            extra = sum(e.days for e in t.extensions)
            opinion_due = period_due(calendar, t, "opinion", extra_days=extra)
            changes["opinion_on"] = day
            changes["opinion_on_time"] = opinion_due is not None and day <= opinion_due
        case _:
            pass
    return replace(t, **changes)


def replay(
    events: Sequence[HistoryEvent],
    calendar: HolidayCalendar,
    rule_set: RuleSet | None = None,
) -> Timeline:
    """Fold a whole history (oldest first, starting with ``register``) into a timeline.

    Each event is applied as ``recorded`` (see :func:`advance`).
    """
    if not events:
        raise ValidationError("an item's history starts with a 'register' event; it is empty")
    timeline = start(events[0], rule_set)
    for event in events[1:]:
        timeline = advance(timeline, event, calendar, recorded=True)
    return timeline
