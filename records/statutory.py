"""Public holidays of any year by the national rules, before the year's notice is out.

全国年节及纪念日放假办法 (2024 revision, from 2025): New Year 1 day, Spring Festival 4 days
from its eve, Qingming 1, Labour Day 2, Dragon Boat 1, Mid-Autumn 1, National Day 3; a
holiday that falls on a Saturday or Sunday is made up on the next working day (Art. 6). The
lunar festivals and the make-up days come from the ``holidays`` package's China calendar.

Only the *rules* are taken from the package. Its China calendar also contains the adjusted
days (调休) of the State Council notices it knows ("Day off (substituted from ...)" and
``weekend_workdays``); those are dropped here: an official schedule enters the system only as
a notice file (``config/holidays/`` or ``petition-gateway calendar import``), audited, so an
upgrade of the package never moves a deadline silently.

Checked against the package (0.109) for 2027-2040 with an independent count of the rules
(lunar dates from the package, make-up days counted by hand): identical, including the
coincidence of Mid-Autumn and National Day on 2028-10-03, where both count the day once (the
rules say nothing about coinciding holidays; the State Council usually adds a day, which only
the notice can tell). For years before 2025 the package applies the rules then in force (3
days of Spring Festival, Labour Day 1 day), which is right for those years.
"""

from __future__ import annotations

import datetime as dt

import holidays

__all__ = ["FIRST_YEAR", "statutory_holidays"]

#: the package's China calendar starts here; earlier years get weekends only
FIRST_YEAR = 1950

# The package's label for a day off moved by a notice (language en_US); anything else on a
# date is a festival or its make-up day (" (observed)").
_SUBSTITUTED = "Day off (substituted"


def statutory_holidays(year: int) -> frozenset[dt.date]:
    """The rest days of ``year`` by the rules (festival days and their make-up days).

    Weekend days are included only when a festival falls on them; adjusted working days
    (调休) are never included: the rules do not set them, the year's notice does. Computes
    the year each time (about a millisecond); :class:`records.calendar.HolidayCalendar`
    keeps the years it asked for.
    """
    if year < FIRST_YEAR:
        return frozenset()
    calendar = holidays.country_holidays("CN", years=year, language="en_US")
    days: set[dt.date] = set()
    for day in calendar:
        names = calendar.get_list(day)
        if any(not name.startswith(_SUBSTITUTED) for name in names):
            days.add(day)
    return frozenset(d for d in days if d.year == year)
