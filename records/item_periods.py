"""The periods running on a petition item in each state: what is due, by when, under which law.

:func:`open_deadlines` and :func:`current_deadline` read a :class:`~records.item_states.Timeline`
and the holiday calendar; :data:`ARTICLES` names the legal basis of each period per rule set.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from records.calendar import HolidayCalendar
from records.deadlines import ClockStop, DayCount, calendar_deadline, working_deadline
from records.item_states import ItemState, RuleSet, Timeline

__all__ = [
    "is_provisional",
    "ARTICLES",
    "Deadline",
    "current_deadline",
    "open_deadlines",
    "period_due",
    "window_due",
]

S = ItemState


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


def is_provisional(calendar: HolidayCalendar, due: dt.date, what: str | None) -> bool:
    """Whether a stored due date of period ``what`` may move when a holiday notice comes.

    A counted period's last day lies in a year without an official notice (the national
    rules gave it); a date set by an assigning body (``assignment_report``) never moves.
    Equal to :attr:`Deadline.provisional` for every period ending from 2020 on (the first
    shipped year; a period that starts in an earlier year without a notice is not flagged).
    """
    return what != "assignment_report" and calendar.is_provisional(due)


def period_due(
    calendar: HolidayCalendar,
    timeline: Timeline,
    what: str,
    *,
    extra_days: int = 0,
) -> dt.date | None:
    """The last day of period ``what`` counted from the timeline's last state change.

    The handling period (``opinion``) counts from the acceptance, also after a part of the
    requests was answered (部分办结).
    """
    start = _opinion_start(timeline) if what == "opinion" else timeline.since
    return _deadline(calendar, timeline, what, start, extra_days=extra_days).due


def _opinion_start(timeline: Timeline) -> dt.date:
    return timeline.accepted_on or timeline.since


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
        case S.ACCEPTED | S.PART_CONCLUDED:
            extra = sum(e.days for e in t.extensions)
            found.append(_deadline(calendar, t, "opinion", _opinion_start(t), extra_days=extra))
        case S.OPINION_ISSUED | S.REPORTED:
            found.append(_deadline(calendar, t, "review_request", _window_start(t)))
        case S.REVIEW_REQUESTED:
            found.append(_deadline(calendar, t, "review_opinion", t.since))
        case S.REVIEW_OPINION:
            found.append(_deadline(calendar, t, "rereview_request", _window_start(t)))
        case S.REREVIEW_REQUESTED:
            found.append(_deadline(calendar, t, "rereview_opinion", t.since, stops=t.stops))
        case _:
            pass
    handling = {S.TRANSFERRED, S.ASSIGNED, S.RECEIVED, S.ACCEPTED, S.PART_CONCLUDED}
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
    # its delivery is recorded they are counted from the day it was issued. A completion
    # report (已上报待确认) and its return do not restart them.
    if timeline.delivered_on is not None:
        return timeline.delivered_on
    if timeline.state in (S.OPINION_ISSUED, S.REPORTED) and timeline.opinion_on is not None:
        return timeline.opinion_on
    return timeline.since


def window_due(timeline: Timeline, calendar: HolidayCalendar, what: str) -> dt.date:
    """The last day of the petitioner's window ``what`` (``review_request`` ...)."""
    due = _deadline(calendar, timeline, what, _window_start(timeline)).due
    assert due is not None  # no clock stops on petitioner windows
    return due
