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
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from config.errors import InvalidTransition, ValidationError
from records.calendar import HolidayCalendar
from records.deadlines import (
    ClockStop,
    DayCount,
    Extension,
    calendar_deadline,
    check_extension,
    local_date,
    working_deadline,
)

__all__ = [
    "ANNOTATION_STATES",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Deadline",
    "EventType",
    "HistoryEvent",
    "ItemState",
    "STATE_LABELS_ZH",
    "RuleSet",
    "Timeline",
    "advance",
    "allowed_events",
    "current_deadline",
    "next_state",
    "open_deadlines",
    "replay",
    "rule_set_for",
]


class ItemState(StrEnum):
    """Where a petition item stands."""

    REGISTERED = "registered"
    TRANSFERRED = "transferred"
    ASSIGNED = "assigned"
    DIVERTED = "diverted"
    NOT_ACCEPTED = "not_accepted"
    RECEIVED = "received"
    RETURNED = "returned"
    ACCEPTED = "accepted"
    OPINION_ISSUED = "opinion_issued"
    REVIEW_REQUESTED = "review_requested"
    REVIEW_OPINION = "review_opinion"
    REREVIEW_REQUESTED = "rereview_requested"
    REREVIEW_OPINION = "rereview_opinion"
    CONCLUDED = "concluded"
    #: sent to an organ outside the district's tree; off the district's hands, on record
    TRANSFERRED_OUT = "transferred_out"


#: what a petitioner sees for each state (receipts, progress page)
STATE_LABELS_ZH: Mapping[ItemState, str] = MappingProxyType(
    {
        ItemState.REGISTERED: "已登记",
        ItemState.TRANSFERRED: "已转送",
        ItemState.ASSIGNED: "已交办",
        ItemState.DIVERTED: "已导入法定途径",
        ItemState.NOT_ACCEPTED: "不予受理",
        ItemState.RECEIVED: "已接收",
        ItemState.RETURNED: "已退回",
        ItemState.ACCEPTED: "已受理",
        ItemState.OPINION_ISSUED: "已出具处理意见",
        ItemState.REVIEW_REQUESTED: "复查中",
        ItemState.REVIEW_OPINION: "已出具复查意见",
        ItemState.REREVIEW_REQUESTED: "复核中",
        ItemState.REREVIEW_OPINION: "已出具复核意见",
        ItemState.CONCLUDED: "已办结",
        ItemState.TRANSFERRED_OUT: "已转送区外机关",
    }
)


class RuleSet(StrEnum):
    """Which regulations govern an item (stored per item)."""

    #: 信访工作条例, in force 2022-05-01
    R2022 = "2022"
    #: 信访条例 (State Council, 2005), for items registered before 2022-05-01
    R2005 = "2005"


#: the 2022 Regulations took effect on this day
RULES_2022_EFFECTIVE = dt.date(2022, 5, 1)


def rule_set_for(registered_on: dt.date) -> RuleSet:
    """The rule set of an item registered on ``registered_on``."""
    return RuleSet.R2022 if registered_on >= RULES_2022_EFFECTIVE else RuleSet.R2005


class EventType(StrEnum):
    """Something that happens to an item; every one is appended to its history."""

    REGISTER = "register"
    TRANSFER = "transfer"
    #: to an organ outside the district's tree (city department, court, discipline inspection)
    TRANSFER_OUT = "transfer_out"
    ASSIGN = "assign"
    DIVERT = "divert"
    NOT_ACCEPT = "not_accept"
    RECEIVE = "receive"
    RETURN = "return"
    ACCEPT = "accept"
    ISSUE_OPINION = "issue_opinion"
    REQUEST_REVIEW = "request_review"
    ISSUE_REVIEW_OPINION = "issue_review_opinion"
    REQUEST_REREVIEW = "request_rereview"
    ISSUE_REREVIEW_OPINION = "issue_rereview_opinion"
    CONCLUDE = "conclude"
    # Annotations: recorded in the history, the state stays.
    EXTEND = "extend"
    STOP_CLOCK = "stop_clock"
    RESUME_CLOCK = "resume_clock"
    SET_OUTCOME = "set_outcome"
    EVALUATE = "evaluate"
    NOTE = "note"
    #: the written opinion reached the petitioner: the review window counts from then
    DELIVER = "deliver"


S = ItemState
E = EventType

#: (state, event) -> new state. Anything not listed is an invalid transition.
TRANSITIONS: Mapping[tuple[ItemState, EventType], ItemState] = MappingProxyType(
    {
        (S.REGISTERED, E.TRANSFER): S.TRANSFERRED,
        (S.REGISTERED, E.ASSIGN): S.ASSIGNED,
        (S.REGISTERED, E.DIVERT): S.DIVERTED,
        (S.REGISTERED, E.NOT_ACCEPT): S.NOT_ACCEPTED,
        # The registering unit is itself competent: it accepts directly instead of
        # transferring to itself (which inflated the transfer counts).
        (S.REGISTERED, E.ACCEPT): S.ACCEPTED,
        (S.RETURNED, E.TRANSFER): S.TRANSFERRED,
        (S.RETURNED, E.ASSIGN): S.ASSIGNED,
        (S.RETURNED, E.DIVERT): S.DIVERTED,
        (S.RETURNED, E.NOT_ACCEPT): S.NOT_ACCEPTED,
        (S.REGISTERED, E.TRANSFER_OUT): S.TRANSFERRED_OUT,
        (S.RETURNED, E.TRANSFER_OUT): S.TRANSFERRED_OUT,
        (S.TRANSFERRED, E.RECEIVE): S.RECEIVED,
        (S.ASSIGNED, E.RECEIVE): S.RECEIVED,
        (S.RECEIVED, E.RETURN): S.RETURNED,
        (S.RECEIVED, E.ACCEPT): S.ACCEPTED,
        # The handling unit itself refuses in writing or diverts to a legal procedure
        # (Art. 31) after the item was routed to it.
        (S.RECEIVED, E.NOT_ACCEPT): S.NOT_ACCEPTED,
        (S.RECEIVED, E.DIVERT): S.DIVERTED,
        (S.ACCEPTED, E.ISSUE_OPINION): S.OPINION_ISSUED,
        (S.OPINION_ISSUED, E.REQUEST_REVIEW): S.REVIEW_REQUESTED,
        (S.OPINION_ISSUED, E.CONCLUDE): S.CONCLUDED,
        (S.REVIEW_REQUESTED, E.ISSUE_REVIEW_OPINION): S.REVIEW_OPINION,
        (S.REVIEW_OPINION, E.REQUEST_REREVIEW): S.REREVIEW_REQUESTED,
        (S.REVIEW_OPINION, E.CONCLUDE): S.CONCLUDED,
        (S.REREVIEW_REQUESTED, E.ISSUE_REREVIEW_OPINION): S.REREVIEW_OPINION,
        (S.REREVIEW_OPINION, E.CONCLUDE): S.CONCLUDED,
    }
)

_AFTER_ACCEPT = frozenset(
    {
        S.ACCEPTED,
        S.OPINION_ISSUED,
        S.REVIEW_REQUESTED,
        S.REVIEW_OPINION,
        S.REREVIEW_REQUESTED,
        S.REREVIEW_OPINION,
        S.CONCLUDED,
    }
)

#: annotation event -> states in which it may be recorded
ANNOTATION_STATES: Mapping[EventType, frozenset[ItemState]] = MappingProxyType(
    {
        E.EXTEND: frozenset({S.ACCEPTED}),
        E.STOP_CLOCK: frozenset({S.REREVIEW_REQUESTED}),
        E.RESUME_CLOCK: frozenset({S.REREVIEW_REQUESTED}),
        E.SET_OUTCOME: _AFTER_ACCEPT | {S.DIVERTED},
        E.EVALUATE: _AFTER_ACCEPT,
        E.NOTE: frozenset(ItemState),
        E.DELIVER: frozenset({S.OPINION_ISSUED, S.REVIEW_OPINION, S.REREVIEW_OPINION}),
    }
)

#: states with no way out
TERMINAL_STATES = frozenset(s for s in ItemState if not any(k[0] is s for k in TRANSITIONS))


def allowed_events(state: ItemState) -> tuple[EventType, ...]:
    """Events that may be applied in ``state`` (transitions first, then annotations)."""
    moves = [e for (s, e) in TRANSITIONS if s is state]
    notes = [e for e, states in ANNOTATION_STATES.items() if state in states]
    return tuple(moves + notes)


def next_state(state: ItemState, event: EventType) -> ItemState:
    """The state after ``event`` in ``state`` (the same state for an annotation).

    Raises:
        InvalidTransition: the event is not allowed in ``state``; the message names the
            state and the allowed events.
    """
    target = TRANSITIONS.get((state, event))
    if target is not None:
        return target
    if state in ANNOTATION_STATES.get(event, frozenset()):
        return state
    if event is E.REGISTER:
        raise InvalidTransition(f"item is already registered (state '{state}')")
    allowed = ", ".join(f"'{e}'" for e in allowed_events(state)) or "none"
    raise InvalidTransition(
        f"cannot '{event}' an item in state '{state}'; allowed in '{state}': {allowed}"
    )


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One entry of an item's append-only history, as the lifecycle sees it.

    Attributes:
        at: when it happened (aware).
        type: what happened.
        data: event details: ``days``/``approved_by``/``reason`` for ``extend``;
            ``due`` (ISO date) for ``assign``; ``reason`` for ``stop_clock``;
            ``delivered_on`` (ISO date) for ``deliver``; ``reviewing_unit_id`` for
            ``request_review``/``request_rereview``; ``by_unit_id`` (the issuing unit)
            for the review and re-review opinions;
            ``petitioner_waived`` (bool) for an early ``conclude``.
        account_id: who did it (``None`` for the petitioner or the system).
    """

    at: dt.datetime
    type: EventType
    data: Mapping[str, Any] = field(default_factory=dict)
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """What the history says about an item, folded event by event.

    Attributes:
        rule_set: the regulations applying to the item.
        state: the current state.
        since: the day of the last state change.
        registered_on: day of registration.
        received_on: day the handling unit received it (last receipt).
        accepted_on: day of acceptance.
        opinion_on: day the handling opinion was issued.
        delivered_on: day the current (review / re-review) opinion was delivered to the
            petitioner; ``None`` until recorded, and again after each state change.
        reviewing_unit_id: the organ one level up that reviews (Art. 35) or re-reviews
            (Art. 36), from the last request; ``None`` when not recorded.
        extensions: approved extensions of the handling period.
        stops: clock stops of the re-review period.
        assignment_due: deadline set by the assigning body for the completion report.
        accepted_on_time: acceptance within its period (``None`` until accepted).
        opinion_on_time: opinion within its (extended) period (``None`` until issued).
    """

    rule_set: RuleSet
    state: ItemState
    since: dt.date
    registered_on: dt.date
    received_on: dt.date | None = None
    accepted_on: dt.date | None = None
    opinion_on: dt.date | None = None
    delivered_on: dt.date | None = None
    reviewing_unit_id: int | None = None
    extensions: tuple[Extension, ...] = ()
    stops: tuple[ClockStop, ...] = ()
    assignment_due: dt.date | None = None
    accepted_on_time: bool | None = None
    opinion_on_time: bool | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """A period running on an item.

    Attributes:
        what: machine key (``route``, ``receive``, ``object``, ``accept``, ``opinion``,
            ``review_request``, ``review_opinion``, ``rereview_request``,
            ``rereview_opinion``, ``assignment_report``).
        description: what must happen, for people.
        due: last day (inclusive); ``None`` while a clock stop suspends the period.
        article: the legal basis.
        obligor: who must act: the ``unit`` or the ``petitioner`` (a window, not a duty).
        start: the day of the event the period counts from.
        days: length of the period.
        counting: calendar or working days.
        provisional: the period runs into a year whose official holiday notice is not loaded
            yet, so ``due`` follows the national rules and may move when the notice is
            imported (DOMAIN.md); ``False`` for a date set by an assigning body.
    """

    what: str
    description: str
    due: dt.date | None
    article: str
    obligor: Literal["unit", "petitioner"]
    start: dt.date
    days: int
    counting: DayCount
    provisional: bool = False


@dataclass(frozen=True, slots=True)
class _Period:
    description: str
    days: int
    counting: DayCount
    obligor: Literal["unit", "petitioner"]


_CAL, _WORK = DayCount.CALENDAR, DayCount.WORKING
_PERIODS: Mapping[str, _Period] = MappingProxyType(
    {
        "route": _Period("transfer, assign, divert or refuse in writing", 15, _CAL, "unit"),
        "receive": _Period("acknowledge and issue the written acceptance notice", 15, _CAL, "unit"),
        "object": _Period("object to the transfer/assignment (optional)", 5, _WORK, "unit"),
        "accept": _Period("written acceptance notice", 15, _CAL, "unit"),
        "opinion": _Period("issue the handling opinion", 60, _CAL, "unit"),
        "review_request": _Period("petitioner may request a review", 30, _CAL, "petitioner"),
        "review_opinion": _Period("issue the review opinion", 30, _CAL, "unit"),
        "rereview_request": _Period("petitioner may request a re-review", 30, _CAL, "petitioner"),
        "rereview_opinion": _Period("re-review opinion (hearings excluded)", 30, _CAL, "unit"),
    }
)  # fmt: skip

#: legal basis of each period per rule set
ARTICLES: Mapping[RuleSet, Mapping[str, str]] = MappingProxyType(
    {
        RuleSet.R2022: MappingProxyType(
            {
                "route": "信访工作条例 (2022) Art. 22",
                "object": "信访工作条例 (2022) Art. 23",
                # a unit that received a transferred or assigned item tells the petitioner in
                # writing within 15 days that it took it and how it will be handled: Art. 23(3)
                # (DOMAIN.md gives no number; checked against a district petition bureau's
                # published reading of the Regulations, 2025)
                "accept": "信访工作条例 (2022) Art. 23(3)",
                # a transferred item nobody acknowledges: the same 15 days, counted from the
                # transfer (the earliest it can have arrived)
                "receive": "信访工作条例 (2022) Art. 23(3)",
                "opinion": "信访工作条例 (2022) Art. 34",
                "review_request": "信访工作条例 (2022) Art. 35",
                "review_opinion": "信访工作条例 (2022) Art. 35",
                "rereview_request": "信访工作条例 (2022) Art. 36",
                "rereview_opinion": "信访工作条例 (2022) Art. 36",
                "assignment_report": "assigning body's deadline (交办)",
            }
        ),
        RuleSet.R2005: MappingProxyType(
            {
                "route": "信访条例 (2005) Art. 21",
                # The 2005 regulations set no objection window; the 2022 one is applied.
                "object": "信访工作条例 (2022) Art. 23 (no 2005 equivalent)",
                "accept": "信访条例 (2005) Art. 22",
                "receive": "信访条例 (2005) Art. 22",
                "opinion": "信访条例 (2005) Art. 33",
                "review_request": "信访条例 (2005) Art. 34",
                "review_opinion": "信访条例 (2005) Art. 34",
                "rereview_request": "信访条例 (2005) Art. 35",
                "rereview_opinion": "信访条例 (2005) Art. 35",
                "assignment_report": "assigning body's deadline (交办)",
            }
        ),
    }
)


def _deadline(
    calendar: HolidayCalendar,
    timeline: Timeline,
    what: str,
    start: dt.date,
    *,
    extra_days: int = 0,
    stops: Sequence[ClockStop] = (),
) -> Deadline:
    period = _PERIODS[what]
    days = period.days + extra_days
    due: dt.date | None
    if period.counting is DayCount.WORKING:
        due = working_deadline(calendar, start, days)
    else:
        due = calendar_deadline(calendar, start, days, stops=stops)
    # Every day after the event can matter (working days; the rest-day move of the last day),
    # so one day in a year without a notice makes the date provisional. A period suspended
    # by an open clock stop has no date yet; it is provisional if its year has no notice.
    last = due if due is not None else start + dt.timedelta(days=days)
    provisional = calendar.provisional_between(start + dt.timedelta(days=1), last)
    return Deadline(
        what=what,
        description=period.description + (f" (extended by {extra_days} d)" if extra_days else ""),
        due=due,
        article=ARTICLES[timeline.rule_set][what],
        obligor=period.obligor,
        start=start,
        days=days,
        counting=period.counting,
        provisional=provisional,
    )


def open_deadlines(timeline: Timeline, calendar: HolidayCalendar) -> tuple[Deadline, ...]:
    """Every period running in the item's current state, the unit's duties first."""
    t = timeline
    found: list[Deadline] = []
    match t.state:
        case S.REGISTERED | S.RETURNED:
            found.append(_deadline(calendar, t, "route", t.since))
        case S.TRANSFERRED:
            # Without this an item the receiving unit never acknowledges has no deadline
            # and is on no due or overdue list. An assigned item has the assigning body's.
            found.append(_deadline(calendar, t, "receive", t.since))
        case S.ASSIGNED if t.assignment_due is None:
            found.append(_deadline(calendar, t, "receive", t.since))
        case S.RECEIVED:
            found.append(_deadline(calendar, t, "accept", t.since))
            found.append(_deadline(calendar, t, "object", t.since))
        case S.ACCEPTED:
            extra = sum(e.days for e in t.extensions)
            found.append(_deadline(calendar, t, "opinion", t.since, extra_days=extra))
        case S.OPINION_ISSUED:
            found.append(_deadline(calendar, t, "review_request", _window_start(t)))
        case S.REVIEW_REQUESTED:
            found.append(_deadline(calendar, t, "review_opinion", t.since))
        case S.REVIEW_OPINION:
            found.append(_deadline(calendar, t, "rereview_request", _window_start(t)))
        case S.REREVIEW_REQUESTED:
            found.append(_deadline(calendar, t, "rereview_opinion", t.since, stops=t.stops))
        case _:
            pass
    handling = {S.TRANSFERRED, S.ASSIGNED, S.RECEIVED, S.ACCEPTED}
    if t.assignment_due is not None and t.state in handling:
        found.append(
            Deadline(
                what="assignment_report",
                description="completion report to the assigning body",
                due=t.assignment_due,
                article=ARTICLES[t.rule_set]["assignment_report"],
                obligor="unit",
                start=t.since,
                days=(t.assignment_due - t.since).days,
                counting=DayCount.CALENDAR,
            )
        )
    found.sort(key=lambda d: (d.obligor != "unit", d.what == "object"))
    return tuple(found)


def current_deadline(timeline: Timeline, calendar: HolidayCalendar) -> Deadline | None:
    """The period that matters now: the unit's mandatory duty, else the petitioner's window.

    In ``received`` the acceptance notice (15 d) is current; the optional objection window
    (5 working days) is among :func:`open_deadlines`. ``None`` in a terminal state or while
    waiting for the receiving unit with no assignment deadline.
    """
    found = open_deadlines(timeline, calendar)
    return found[0] if found else None


def _window_start(timeline: Timeline) -> dt.date:
    # Arts. 35/36: the petitioner's 30 days run from receipt of the written opinion; until
    # its delivery is recorded they are counted from the day it was issued.
    return timeline.delivered_on or timeline.since


def _window_due(timeline: Timeline, calendar: HolidayCalendar, what: str) -> dt.date:
    due = _deadline(calendar, timeline, what, _window_start(timeline)).due
    assert due is not None  # no clock stops on petitioner windows
    return due


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
            period_due = _deadline(calendar, t, "opinion", t.since).due
            if not recorded and period_due is not None and day > period_due:
                raise ValidationError(
                    f"extension approved on {day} is too late: the 60-day handling period "
                    f"ended on {period_due} ({ARTICLES[t.rule_set]['opinion']})"
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
            if t.delivered_on is not None and not recorded:
                raise ValidationError(
                    f"the opinion of {t.since} was already delivered on {t.delivered_on}"
                )
            raw = data.get("delivered_on")
            try:
                delivered = dt.date.fromisoformat(str(raw))
            except ValueError as exc:
                raise ValidationError(
                    f"'deliver' needs an ISO 'delivered_on', got {raw!r}"
                ) from exc
            if not recorded and not t.since <= delivered <= day:
                raise ValidationError(
                    f"delivery on {delivered} must lie between the opinion of {t.since} and "
                    f"the day it is recorded, {day}"
                )
            return replace(t, delivered_on=delivered)
        case E.REQUEST_REVIEW | E.REQUEST_REREVIEW:
            what = "review_request" if event.type is E.REQUEST_REVIEW else "rereview_request"
            if not recorded and t.delivered_on is not None and day < t.delivered_on:
                raise ValidationError(
                    f"'{event.type}' dated {day} is before the opinion was delivered on "
                    f"{t.delivered_on}"
                )
            due = _window_due(t, calendar, what)
            if day > due:
                raise ValidationError(
                    f"'{event.type}' on {day} is too late: the window ended on {due} "
                    f"({ARTICLES[t.rule_set][what]})"
                )
        case E.RETURN:
            object_due = _deadline(calendar, t, "object", t.since).due
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
        case E.CONCLUDE if t.state in (S.OPINION_ISSUED, S.REVIEW_OPINION):
            what = "review_request" if t.state is S.OPINION_ISSUED else "rereview_request"
            due = _window_due(t, calendar, what)
            if day <= due and not data.get("petitioner_waived"):
                raise ValidationError(
                    f"cannot conclude on {day}: the petitioner may still ask for a "
                    f"{'review' if t.state is S.OPINION_ISSUED else 're-review'} until {due} "
                    "(set petitioner_waived if they declined in writing)"
                )
        case _:
            pass
    if target is t.state:  # other annotations change nothing the deadlines depend on
        return t
    changes: dict[str, Any] = {"state": target, "since": day, "delivered_on": None}
    match event.type:
        case E.ASSIGN:
            due_raw = data.get("due")
            if due_raw is not None:
                try:
                    changes["assignment_due"] = dt.date.fromisoformat(str(due_raw))
                except ValueError as exc:
                    raise ValidationError(
                        f"assignment 'due' must be an ISO date, got {due_raw!r}"
                    ) from exc
        case E.TRANSFER:
            changes["assignment_due"] = None
        case E.REQUEST_REVIEW | E.REQUEST_REREVIEW:
            reviewer = data.get("reviewing_unit_id")
            if reviewer is not None:
                changes["reviewing_unit_id"] = _int(data, "reviewing_unit_id", event.type)
        case E.RECEIVE:
            changes["received_on"] = day
        case E.ACCEPT:
            accept_due = _deadline(calendar, t, "accept", t.since).due
            changes["accepted_on"] = day
            changes["accepted_on_time"] = accept_due is not None and day <= accept_due
        case E.ISSUE_OPINION:
            extra = sum(e.days for e in t.extensions)
            opinion_due = _deadline(calendar, t, "opinion", t.since, extra_days=extra).due
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
