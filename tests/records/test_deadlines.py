"""Deadline arithmetic against the real 2020-2026 holiday files."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from config.errors import ConfigError, ValidationError
from records.calendar import HolidayCalendar, load_calendar
from records.deadlines import (
    ClockStop,
    Extension,
    calendar_deadline,
    check_extension,
    local_date,
    working_deadline,
)

D = dt.date

REPO_HOLIDAYS = Path(__file__).resolve().parents[2] / "config" / "holidays"


@pytest.mark.parametrize(
    ("event", "days", "expected", "why"),
    [
        # plain: 15 days after a Monday, lands on a Tuesday
        (D(2024, 3, 4), 15, D(2024, 3, 19), "ordinary weekday"),
        # lands on Saturday 2024-03-23 -> Monday 25
        (D(2024, 3, 8), 15, D(2024, 3, 25), "weekend moves to Monday"),
        # Spring Festival 2024: 10..17 Feb off, Sun 18 Feb is a working day (调休)
        (
            D(2024, 1, 27),
            15,
            D(2024, 2, 18),
            "lands on 2024-02-11 holiday -> adjusted workday Sun 18",
        ),
        (D(2024, 2, 1), 15, D(2024, 2, 18), "lands on Fri 16 Feb (holiday) -> Sun 18 (workday)"),
        (D(2024, 2, 2), 15, D(2024, 2, 18), "lands on Sat 17 (holiday) -> Sun 18 (workday)"),
        # National Day 2023: 29 Sep .. 6 Oct off; Sat 7 and Sun 8 Oct are working days
        (D(2023, 9, 1), 30, D(2023, 10, 7), "lands on 1 Oct -> Sat 7 Oct (调休 workday)"),
        (D(2023, 9, 14), 15, D(2023, 10, 7), "lands on 29 Sep -> Sat 7 Oct"),
        # month end: 31 Jan + 30 = 1 Mar 2024 (leap year: Feb has 29 days), a Friday
        (D(2024, 1, 31), 30, D(2024, 3, 1), "across leap February"),
        (D(2023, 1, 31), 30, D(2023, 3, 2), "across non-leap February"),
        # year end 2024 -> 2025: 1 Jan 2025 holiday, lands there -> Thu 2 Jan
        (D(2024, 12, 2), 30, D(2025, 1, 2), "New Year's Day 2025 -> next day"),
        (D(2024, 12, 17), 15, D(2025, 1, 2), "year end, 15 days"),
        # Spring Festival 2025: 28 Jan .. 4 Feb off; Sun 26 Jan and Sat 8 Feb worked
        (D(2024, 12, 27), 30, D(2025, 1, 26), "lands on Sun 26 Jan 2025, a 调休 workday: stays"),
        (D(2025, 1, 1), 30, D(2025, 2, 5), "lands on 31 Jan (holiday) -> Wed 5 Feb"),
        # 60-day handling period from acceptance, ending on National Day 2024
        (D(2024, 8, 2), 60, D(2024, 10, 8), "lands on 1 Oct 2024 -> Tue 8 Oct"),
    ],
)
def test_calendar_day_deadlines(
    calendar: HolidayCalendar, event: dt.date, days: int, expected: dt.date, why: str
) -> None:
    assert calendar_deadline(calendar, event, days) == expected, why


@pytest.mark.parametrize(
    ("event", "expected", "why"),
    [
        (D(2024, 3, 4), D(2024, 3, 11), "Mon -> next Mon"),
        (D(2024, 2, 8), D(2024, 2, 21), "Spring Festival 2024 skipped, Sun 18 Feb counts"),
        (D(2023, 9, 27), D(2023, 10, 10), "28 Sep, Sat 7 Oct, Sun 8 Oct (调休), 9, 10 Oct"),
        (D(2024, 12, 27), D(2025, 1, 6), "year end: 30, 31 Dec, 2, 3, 6 Jan"),
        (D(2025, 1, 24), D(2025, 2, 7), "Sun 26 Jan worked, 27 Jan, then 5, 6, 7 Feb"),
    ],
)
def test_working_day_objection_window(
    calendar: HolidayCalendar, event: dt.date, expected: dt.date, why: str
) -> None:
    assert working_deadline(calendar, event, 5) == expected, why


def test_extension_adds_days_and_is_capped(calendar: HolidayCalendar) -> None:
    accepted = D(2024, 3, 4)
    base = calendar_deadline(calendar, accepted, 60)
    extended = calendar_deadline(calendar, accepted, 60 + 30)
    assert base == D(2024, 5, 6)  # 3 May is in the Labour Day holiday (1..5 May) -> Mon 6
    assert extended == D(2024, 6, 3)  # 2 Jun is a Sunday -> Mon 3 Jun
    first = Extension(days=20, approved_by=7, reason="需要现场调查", approved_on=accepted)
    assert check_extension([], first) == 20
    with pytest.raises(ValidationError, match="20 days already granted, at most 30"):
        check_extension([first], Extension(11, 7, "more", accepted))
    with pytest.raises(ValidationError, match="1..30"):
        Extension(days=31, approved_by=7, reason="x", approved_on=accepted)
    with pytest.raises(ValidationError, match="reason"):
        Extension(days=5, approved_by=7, reason=" ", approved_on=accepted)


def test_clock_stop_excludes_hearing_days(calendar: HolidayCalendar) -> None:
    requested = D(2024, 4, 1)
    plain = calendar_deadline(calendar, requested, 30)
    assert plain == D(2024, 5, 6)  # 1 May holiday -> after Labour Day
    hearing = ClockStop(first=D(2024, 4, 10), last=D(2024, 4, 14), reason="听证")
    # 5 stopped days push the raw end from 1 May to 6 May, a working day
    assert calendar_deadline(calendar, requested, 30, stops=[hearing]) == D(2024, 5, 6)
    long_hearing = ClockStop(first=D(2024, 4, 10), last=D(2024, 4, 24))
    # 15 stopped days: raw end 16 May (Thu)
    assert calendar_deadline(calendar, requested, 30, stops=[long_hearing]) == D(2024, 5, 16)
    still_open = ClockStop(first=D(2024, 4, 10), last=None)
    assert calendar_deadline(calendar, requested, 30, stops=[still_open]) is None


def test_event_day_is_china_local() -> None:
    late_utc = dt.datetime(2024, 2, 9, 17, 30, tzinfo=dt.UTC)  # 01:30 on 10 Feb in Beijing
    assert local_date(late_utc) == D(2024, 2, 10)
    with pytest.raises(ValidationError, match="naive"):
        local_date(dt.datetime(2024, 2, 9, 17, 30))


def test_shipped_calendar_covers_2020_to_2026(calendar: HolidayCalendar) -> None:
    assert all(calendar.covers(y) for y in range(2020, 2027))
    assert calendar.unverified_years == frozenset()  # 2026 checked against its notice
    # 2026 (国务院办公厅 2025-11-04): nine days of Spring Festival, Saturdays worked after it
    assert calendar.is_holiday(D(2026, 2, 15))
    assert calendar.is_holiday(D(2026, 2, 23))
    assert calendar.is_working_day(D(2026, 2, 28))
    assert calendar.next_working_day(D(2026, 10, 1)) == D(2026, 10, 8)
    assert calendar.is_holiday(D(2024, 2, 12))
    assert calendar.is_working_day(D(2024, 2, 18))  # Sunday, adjusted working day
    assert not calendar.is_working_day(D(2020, 2, 1))  # cancelled 调休 in 2020 (COVID)
    assert calendar.next_working_day(D(2023, 9, 29)) == D(2023, 10, 7)


def test_a_file_not_yet_checked_is_flagged(tmp_path: Path) -> None:
    text = (REPO_HOLIDAYS / "CN-2026.toml").read_text(encoding="utf-8")
    (tmp_path / "CN-2026.toml").write_text(
        text.replace("verified = true", "verified = false"), encoding="utf-8"
    )
    assert load_calendar(tmp_path).unverified_years == {2026}


def test_missing_year_follows_the_rules_and_warns(
    calendar: HolidayCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="records.calendar"):
        # no notice: New Year's Day by the rules, not a plain Tuesday
        assert not calendar.is_working_day(D(2030, 1, 1))
        assert calendar.is_holiday(D(2030, 1, 1))
        assert calendar.is_working_day(D(2030, 1, 2))
        assert not calendar.is_working_day(D(2030, 1, 5))  # Saturday
        assert calendar.is_provisional(D(2030, 1, 2))
    assert not calendar.is_provisional(D(2026, 12, 31))
    assert [r.message for r in caplog.records].count(
        "no official holiday notice for 2030: using the national rules, dates are "
        "provisional; import the notice with 'petition-gateway calendar import CN-2030.toml'"
    ) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "year = 2031\n[[holidays]]\nname='x'\nfirst=2031-01-01\nlast=2031-01-01\n",
            "'year' must be 2030",
        ),
        ("year = 2030\n", "'holidays' must be a non-empty array"),
        (
            "year = 2030\n[[holidays]]\nname='x'\nfirst='2030-01-01'\nlast=2030-01-01\n",
            "holidays[0].first must be a TOML date",
        ),
        (
            "year = 2030\n[[holidays]]\nname='x'\nfirst=2030-01-03\nlast=2030-01-01\n",
            "holidays[0].last 2030-01-01 is before",
        ),
        (
            "year = 2030\n[[holidays]]\nname='x'\nfirst=2030-01-01\nlast=2030-01-01\n"
            "workdays=[2030-01-07]\n",
            "holidays[0].workdays[0] 2030-01-07 is a Monday",
        ),
        (
            "year = 2030\n[[holidays]]\nname='x'\nfirst=2030-01-01\nlast=2030-01-01\nwrkdays=[]\n",
            "unknown key(s) ['wrkdays']",
        ),
        ("year = 2030\n[[holidays\n", "not valid TOML"),
    ],
)
def test_malformed_holiday_file_names_file_and_key(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "CN-2030.toml").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_calendar(tmp_path)
    assert "CN-2030.toml" in str(err.value)
    assert message in str(err.value)


def test_badly_named_file_and_missing_directory(tmp_path: Path) -> None:
    (tmp_path / "holidays-2030.toml").write_text("year = 2030\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="CN-<year>.toml"):
        load_calendar(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_calendar(tmp_path / "nope")
