"""Calendars for any year: the national rules until the notice is out, provisional dates.

2027 has no shipped notice: its dates follow the rules (New Year, Spring Festival from the
lunar calendar, make-up days for festivals on weekends) and every deadline touching it is
provisional. ``notices/CN-2027.toml`` is a made-up notice, not the real one: loading it
confirms the dates and moves the ones it changes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import holidays
import pytest

from records.calendar import HolidayCalendar, Notice, load_calendar
from records.deadlines import CHINA_TZ
from records.lifecycle import EventType, HistoryEvent, open_deadlines, replay
from records.statutory import statutory_holidays

D = dt.date
NOTICE_2027 = Path(__file__).resolve().parent / "notices" / "CN-2027.toml"


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(10), CHINA_TZ)


def _history(*steps: tuple[EventType, dt.date]) -> list[HistoryEvent]:
    return [HistoryEvent(at=_at(day), type=kind) for kind, day in steps]


REGISTERED = EventType.REGISTER


def _timeline_events(state: str, day: dt.date) -> list[HistoryEvent]:
    """A history whose last state change, on ``day``, leaves the item in ``state``."""
    if state == "registered":
        return _history((REGISTERED, day))
    if state == "received":
        return _history((REGISTERED, day), (EventType.TRANSFER, day), (EventType.RECEIVE, day))
    assert state == "accepted"
    return _history(
        (REGISTERED, day),
        (EventType.TRANSFER, day),
        (EventType.RECEIVE, day),
        (EventType.ACCEPT, day),
    )


def _due(calendar: HolidayCalendar, state: str, day: dt.date, what: str) -> tuple[D | None, bool]:
    timeline = replay(_timeline_events(state, day), calendar)
    (found,) = [d for d in open_deadlines(timeline, calendar) if d.what == what]
    return found.due, found.provisional


@pytest.fixture(scope="module")
def with_notice() -> HolidayCalendar:
    notice = Notice(year=2027, origin="imported CN-2027.toml", text=NOTICE_2027.read_text("utf-8"))
    return load_calendar(notices=[notice])


# (state, event day, period, by the rules (no notice), with the made-up 2027 notice, why)
CASES = [
    (
        "registered",
        D(2026, 12, 17),
        "route",
        D(2027, 1, 4),
        D(2027, 1, 4),
        "15 d end on New Year's Day 2027 (Fri), then the weekend: Mon 4 Jan, not 1 Jan",
    ),
    (
        "accepted",
        D(2026, 12, 8),
        "opinion",
        D(2027, 2, 11),
        D(2027, 2, 15),
        "60 d end Sat 6 Feb, inside Spring Festival (eve 5 Feb + 3 days, Sat/Sun made up on "
        "9, 10 Feb): Thu 11 Feb; the notice rests until 13 Feb, Sun 14 is no 调休: Mon 15",
    ),
    (
        "received",
        D(2027, 2, 4),
        "object",
        D(2027, 2, 17),
        D(2027, 2, 19),
        "5 working days skip the Spring Festival: 11, 12, 15, 16, 17 / 15..19 Feb",
    ),
    (
        "received",
        D(2027, 1, 25),
        "object",
        D(2027, 2, 1),
        D(2027, 1, 31),
        "the notice makes Sun 31 Jan a working day (调休); the rules know no 调休",
    ),
    (
        "accepted",
        D(2027, 3, 3),
        "opinion",
        D(2027, 5, 5),
        D(2027, 5, 6),
        "60 d end Sun 2 May: Labour Day 1-2 May on a weekend is made up on 3, 4 May; the "
        "notice rests 1..5 May",
    ),
    (
        "registered",
        D(2027, 9, 16),
        "route",
        D(2027, 10, 6),
        D(2027, 10, 8),
        "15 d end 1 Oct: National Day 1-3 Oct, Sat/Sun made up on 4, 5 Oct; the notice "
        "rests 1..7 Oct",
    ),
]


@pytest.mark.parametrize(("state", "day", "what", "by_rules", "by_notice", "why"), CASES)
def test_2027_deadlines_follow_the_rules_then_the_notice(
    calendar: HolidayCalendar,
    with_notice: HolidayCalendar,
    state: str,
    day: dt.date,
    what: str,
    by_rules: dt.date,
    by_notice: dt.date,
    why: str,
) -> None:
    assert _due(calendar, state, day, what) == (by_rules, True), why
    assert _due(with_notice, state, day, what) == (by_notice, False), why


def test_a_period_within_a_year_with_a_notice_is_not_provisional(
    calendar: HolidayCalendar,
) -> None:
    assert _due(calendar, "registered", D(2026, 12, 10), "route") == (D(2026, 12, 25), False)
    # 31 Dec 2026 is a Thursday: the period ends in 2026 and needs nothing from 2027
    assert _due(calendar, "registered", D(2026, 12, 16), "route") == (D(2026, 12, 31), False)
    assert _due(calendar, "accepted", D(2026, 9, 1), "opinion") == (D(2026, 11, 2), False)


def test_rules_for_2027_have_the_statutory_13_days_and_their_make_up_days() -> None:
    rules = statutory_holidays(2027)
    assert D(2027, 1, 1) in rules
    spring = sorted(d for d in rules if d.month == 2)
    # eve (Fri 5 Feb) + 3 days = 4 statutory days; Sat 6 and Sun 7 made up on 9 and 10 Feb
    assert spring == [D(2027, 2, d) for d in range(5, 11)]
    on_weekdays = [d for d in rules if d.weekday() < 5]
    assert len(rules) == 19
    assert len(on_weekdays) == 13


@pytest.mark.parametrize("year", [2025, 2026])
def test_package_schedule_matches_the_shipped_notices(calendar: HolidayCalendar, year: int) -> None:
    """The package's official schedule (with its 调休) and our notice files agree day by day,
    and the rules alone rest on no day the notice makes a working day."""
    package = holidays.country_holidays("CN", years=year)
    workdays = set(package.weekend_workdays)
    rules = statutory_holidays(year)
    day = D(year, 1, 1)
    while day.year == year:
        package_rest = day in package or (day.weekday() >= 5 and day not in workdays)
        assert (not calendar.is_working_day(day)) == package_rest, day
        if day in rules:
            assert not calendar.is_working_day(day), day
        day += dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("today", "missing"),
    [
        (D(2026, 10, 31), None),
        (D(2026, 11, 1), 2027),
        (D(2026, 12, 7), 2027),
        (D(2027, 1, 2), 2027),
        (D(2025, 12, 31), None),
    ],
)
def test_next_years_notice_is_expected_from_1_november(
    calendar: HolidayCalendar, today: dt.date, missing: int | None
) -> None:
    assert calendar.missing_notice(today) == missing
