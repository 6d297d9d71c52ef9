"""Statutory periods as pure functions on dates.

Rules (DOMAIN.md, Civil Code Arts. 201 and 203):

* a period in **calendar days** starts on the day after the event; if its last day is a rest
  day (weekend or statutory holiday, unless an adjusted working day) the period ends on the
  next working day;
* a period in **working days** counts only working days after the event, so it always ends on
  a working day;
* an extension (Art. 34) adds at most 30 calendar days in total, approved by a named account
  with a reason;
* clock stops (hearings, Art. 36) are days that do not count towards the period.

Event times are instants; the day of an event is its date in China Standard Time (UTC+8, no
daylight saving since 1991), whatever the server's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from config.errors import ValidationError
from records.calendar import HolidayCalendar

__all__ = [
    "CHINA_TZ",
    "MAX_EXTENSION_DAYS",
    "ClockStop",
    "DayCount",
    "Extension",
    "calendar_deadline",
    "check_extension",
    "days_overdue",
    "local_date",
    "period_end",
    "working_deadline",
]

#: China Standard Time; fixed offset, so no tz database is needed.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")
#: Art. 34: the handling period may be extended by no more than 30 days.
MAX_EXTENSION_DAYS = 30

_ONE_DAY = dt.timedelta(days=1)


class DayCount(StrEnum):
    """How a period is counted."""

    CALENDAR = "calendar"
    WORKING = "working"


@dataclass(frozen=True, slots=True)
class Extension:
    """An approved extension of the handling period (Art. 34).

    Attributes:
        days: calendar days added (1..30; all extensions of an item together at most 30).
        approved_by: id of the account that approved it (the unit head).
        reason: the reason, which the petitioner is told.
        approved_on: the day of approval.
    """

    days: int
    approved_by: int
    reason: str
    approved_on: dt.date

    def __post_init__(self) -> None:
        if not 1 <= self.days <= MAX_EXTENSION_DAYS:
            raise ValidationError(f"an extension is 1..{MAX_EXTENSION_DAYS} days, got {self.days}")
        if not self.reason.strip():
            raise ValidationError("an extension needs a reason (the petitioner is told it)")


@dataclass(frozen=True, slots=True)
class ClockStop:
    """Days that do not count towards a period, e.g. a hearing (Art. 36).

    Attributes:
        first: first stopped day.
        last: last stopped day, inclusive; ``None`` while the stop is still open.
        reason: why the clock stopped.
    """

    first: dt.date
    last: dt.date | None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.last is not None and self.last < self.first:
            raise ValidationError(f"clock stop ends {self.last} before it starts {self.first}")

    def covers(self, day: dt.date) -> bool:
        """Whether ``day`` is a stopped day."""
        return self.first <= day and (self.last is None or day <= self.last)


def local_date(at: dt.datetime) -> dt.date:
    """The date of an instant in China Standard Time.

    Raises:
        ValidationError: ``at`` is naive.
    """
    if at.tzinfo is None:
        raise ValidationError(f"naive datetime {at!r}: event times must be timezone-aware")
    return at.astimezone(CHINA_TZ).date()


def period_end(event_day: dt.date, days: int, stops: Iterable[ClockStop] = ()) -> dt.date | None:
    """The raw last day of a calendar-day period, before the rest-day rule.

    Args:
        event_day: the day of the event; counting starts the day after.
        days: length of the period in calendar days.
        stops: clock stops; their days are not counted.

    Returns:
        The last day, or ``None`` if an open clock stop suspends the period before it ends.
    """
    if days < 0:
        raise ValidationError(f"a period cannot be negative, got {days} days")
    stop_list = [s for s in stops if s.last is None or s.last > event_day]
    day = event_day
    counted = 0
    while counted < days:
        day += _ONE_DAY
        stopped = [s for s in stop_list if s.covers(day)]
        if not stopped:
            counted += 1
        elif any(s.last is None for s in stopped):
            return None
    return day


def calendar_deadline(
    calendar: HolidayCalendar,
    event_day: dt.date,
    days: int,
    *,
    stops: Sequence[ClockStop] = (),
) -> dt.date | None:
    """The last day of a period of ``days`` calendar days after ``event_day``.

    The day after the event is day 1; stopped days are skipped; a last day that is a rest
    day moves to the next working day (Civil Code Art. 203).

    Returns:
        The deadline, or ``None`` while an open clock stop suspends the period.
    """
    end = period_end(event_day, days, stops)
    if end is None:
        return None
    return calendar.next_working_day(end)


def working_deadline(calendar: HolidayCalendar, event_day: dt.date, days: int) -> dt.date:
    """The ``days``-th working day after ``event_day`` (e.g. the 5-working-day objection)."""
    if days < 1:
        raise ValidationError(f"a working-day period is at least 1 day, got {days}")
    return calendar.working_days_after(event_day, days)


def check_extension(existing: Sequence[Extension], new: Extension) -> int:
    """Validate one more extension against the 30-day total of Art. 34.

    Returns:
        The total extension in days including ``new``.

    Raises:
        ValidationError: the total would exceed 30 days.
    """
    total = sum(e.days for e in existing) + new.days
    if total > MAX_EXTENSION_DAYS:
        already = total - new.days
        raise ValidationError(
            f"extension of {new.days} days refused: {already} days already granted, "
            f"at most {MAX_EXTENSION_DAYS} in total (Art. 34)"
        )
    return total


def days_overdue(due: dt.date, today: dt.date) -> int:
    """How many days ``today`` is past ``due`` (0 when not overdue)."""
    return max(0, (today - due).days)
