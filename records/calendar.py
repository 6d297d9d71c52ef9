"""The statutory holiday calendar: rest days, holidays and adjusted working days (调休).

The calendar is configuration, not code (DOMAIN.md): each year's official notice is one TOML
file, named ``CN-<year>.toml``, shipped in a directory (``config/holidays/`` by default) or
imported into the database (``petition-gateway calendar import``; see
``records/notices.py``). The format is documented in ``docs/petition-items.md``.

A year with no notice is not an error: its holidays follow the national rules
(:mod:`records.statutory`: festivals and their make-up days, no adjusted working days), every
date in it is *provisional* (:meth:`HolidayCalendar.is_provisional`), and a warning is logged
once per year and calendar.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import ConfigError
from records.statutory import statutory_holidays

__all__ = [
    "DEFAULT_HOLIDAY_DIR",
    "NOTICE_EXPECTED_FROM",
    "Holiday",
    "HolidayCalendar",
    "Notice",
    "calendar_from_files",
    "calendar_from_notices",
    "load_calendar",
    "notice_year",
    "notices_in",
    "read_notice_files",
    "parse_notice",
]

logger = logging.getLogger(__name__)

#: the holiday files shipped with the project
DEFAULT_HOLIDAY_DIR = Path(__file__).resolve().parent.parent / "config" / "holidays"

#: (month, day) from which next year's notice is expected
NOTICE_EXPECTED_FROM = (11, 1)

_FILE_NAME = re.compile(r"^CN-(\d{4})\.toml$")
_ONE_DAY = dt.timedelta(days=1)
# Longest run of consecutive rest days we accept before calling the calendar broken: the
# 2020 Spring Festival extension gave 10 days; 31 leaves room without looping for ever.
_MAX_REST_RUN = 31


@dataclass(frozen=True, slots=True)
class Holiday:
    """One announced holiday block of a year.

    Attributes:
        name: the festival, e.g. ``"春节 Spring Festival"``.
        first: first rest day of the block.
        last: last rest day of the block (inclusive).
        workdays: weekend days made working days (调休) for this block.
    """

    name: str
    first: dt.date
    last: dt.date
    workdays: tuple[dt.date, ...] = ()


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """An immutable set of holidays and adjusted working days for the years it covers.

    Build it with :func:`load_calendar` or directly (tests). Dates outside the covered years
    follow the national rules (:func:`records.statutory.statutory_holidays`) and are
    provisional; a warning is logged once per such year.

    Attributes:
        holidays: rest days announced as public holidays (including weekend days inside a block).
        workdays: weekend days that are working days (调休).
        years: years for which an official notice was loaded.
        unverified_years: years whose file says ``verified = false``.
        blocks: the holiday blocks as read, for display.
    """

    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    years: frozenset[int] = frozenset()
    unverified_years: frozenset[int] = frozenset()
    blocks: tuple[Holiday, ...] = ()
    # Years we already warned about; bookkeeping only, not part of the value.
    _warned: set[int] = field(default_factory=set, compare=False, repr=False, hash=False)
    # Rest days by the rules of the years without a notice, computed once per year.
    _rules: dict[int, frozenset[dt.date]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    def _by_rules(self, day: dt.date) -> bool:
        """Whether ``day`` is a rest day by the national rules (a year without a notice)."""
        days = self._rules.get(day.year)
        if days is None:
            days = self._rules[day.year] = statutory_holidays(day.year)
        return day in days

    def covers(self, year: int) -> bool:
        """Whether an official notice was loaded for ``year``."""
        return year in self.years

    def is_provisional(self, day: dt.date) -> bool:
        """Whether ``day``'s status comes from the rules, not from an official notice."""
        return day.year not in self.years

    def provisional_between(self, first: dt.date, last: dt.date) -> bool:
        """Whether any day of ``first .. last`` (inclusive) lies in a year without a notice.

        A due date computed over that span may move when the year's notice is imported.
        """
        return any(y not in self.years for y in range(first.year, last.year + 1))

    def missing_notice(self, today: dt.date) -> int | None:
        """The year whose official notice should be loaded by ``today`` and is not.

        The current year's, or from 1 November next year's: the State Council publishes
        the schedule around November of the year before (DOMAIN.md). ``None`` if both are in.
        """
        if today.year not in self.years:
            return today.year
        if (today.month, today.day) >= NOTICE_EXPECTED_FROM and today.year + 1 not in self.years:
            return today.year + 1
        return None

    def _check_year(self, day: dt.date) -> None:
        if day.year not in self.years and day.year not in self._warned:
            self._warned.add(day.year)
            logger.warning(
                "no official holiday notice for %d: using the national rules, dates are "
                "provisional; import the notice with 'petition-gateway calendar import "
                "CN-%d.toml'",
                day.year,
                day.year,
            )

    def is_holiday(self, day: dt.date) -> bool:
        """Whether ``day`` is a public holiday (announced, or by the rules), not a weekend."""
        self._check_year(day)
        if day in self.holidays:
            return True
        return day.year not in self.years and self._by_rules(day)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether offices work on ``day``: a weekday that is not a holiday, or a 调休 day."""
        self._check_year(day)
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        # The rules set no adjusted working days: until the notice is out, weekends rest.
        if day.year not in self.years and self._by_rules(day):
            return False
        return day.weekday() < 5

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day on or after ``day``."""
        probe = day
        for _ in range(_MAX_REST_RUN + 1):
            if self.is_working_day(probe):
                return probe
            probe += _ONE_DAY
        raise ConfigError(f"no working day within {_MAX_REST_RUN} days after {day.isoformat()}")

    def working_days_after(self, day: dt.date, count: int) -> dt.date:
        """The ``count``-th working day after ``day`` (``day`` itself is not counted)."""
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        probe = day
        remaining = count
        while remaining:
            probe += _ONE_DAY
            if self.is_working_day(probe):
                remaining -= 1
        return probe if count else day


def _date(value: Any, path: str, key: str) -> dt.date:
    # TOML local dates arrive as datetime.date; a datetime or a string means a typo.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    raise ConfigError(f"{path}: {key} must be a TOML date like 2024-02-10, got {value!r}")


def _parse_file(path: str, year: int, data: Mapping[str, Any]) -> tuple[list[Holiday], bool]:
    if data.get("year") != year:
        raise ConfigError(
            f"{path}: key 'year' must be {year} (the file name), got {data.get('year')!r}"
        )
    verified = data.get("verified", True)
    if not isinstance(verified, bool):
        raise ConfigError(f"{path}: key 'verified' must be true or false, got {verified!r}")
    raw_blocks = data.get("holidays")
    if not isinstance(raw_blocks, list) or not raw_blocks:
        raise ConfigError(f"{path}: key 'holidays' must be a non-empty array of tables")
    blocks: list[Holiday] = []
    for index, raw in enumerate(raw_blocks):
        where = f"holidays[{index}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: {where} must be a table, got {raw!r}")
        unknown = set(raw) - {"name", "first", "last", "workdays"}
        if unknown:
            raise ConfigError(f"{path}: {where} has unknown key(s) {sorted(unknown)}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{path}: {where}.name must be a non-empty string, got {name!r}")
        first = _date(raw.get("first"), path, f"{where}.first")
        last = _date(raw.get("last"), path, f"{where}.last")
        if last < first:
            raise ConfigError(f"{path}: {where}.last {last} is before {where}.first {first}")
        if (last - first).days >= _MAX_REST_RUN:
            raise ConfigError(f"{path}: {where} spans {(last - first).days + 1} days")
        # A block may start in the previous year (New Year from 31 December) but not wander.
        for key, day in (("first", first), ("last", last)):
            if abs(day.year - year) > 1:
                raise ConfigError(f"{path}: {where}.{key} {day} is not near {year}")
        raw_workdays = raw.get("workdays", [])
        if not isinstance(raw_workdays, list):
            raise ConfigError(f"{path}: {where}.workdays must be an array of dates")
        workdays = tuple(
            _date(w, path, f"{where}.workdays[{i}]") for i, w in enumerate(raw_workdays)
        )
        for i, day in enumerate(workdays):
            if day.weekday() < 5:
                raise ConfigError(
                    f"{path}: {where}.workdays[{i}] {day} is a {day:%A}; adjusted working days "
                    "(调休) are weekend days"
                )
            if first <= day <= last:
                raise ConfigError(f"{path}: {where}.workdays[{i}] {day} is inside the holiday")
        blocks.append(Holiday(name=name.strip(), first=first, last=last, workdays=workdays))
    return blocks, verified


def load_calendar(
    directory: Path | str = DEFAULT_HOLIDAY_DIR, notices: Iterable[Notice] = ()
) -> HolidayCalendar:
    """Load every ``CN-<year>.toml`` of ``directory``, then ``notices``, into a calendar.

    This reads files: call it once at start-up (or in a thread), not on the event loop.

    Args:
        directory: folder holding the holiday files.
        notices: notices imported into the database; each replaces the file of its year.

    Returns:
        The calendar covering the years found.

    Raises:
        ConfigError: the directory is missing, or a file is malformed (the message names the
            file and the key), or two files contradict each other.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ConfigError(f"holiday calendar directory {folder} does not exist")
    return calendar_from_files(sorted(folder.glob("*.toml")), notices)


@dataclass(frozen=True, slots=True)
class Notice:
    """One year's official holiday notice as TOML text (a shipped file or an imported one).

    Attributes:
        year: the year it schedules.
        origin: where it came from, for messages (a path, or ``imported <file name>``).
        text: the TOML text, in the format of ``config/holidays/CN-<year>.toml``.
    """

    year: int
    origin: str
    text: str


def parse_notice(notice: Notice) -> tuple[list[Holiday], bool]:
    """Check a notice and return its holiday blocks and its ``verified`` flag.

    Raises:
        ConfigError: not valid TOML, or malformed (the message names the origin and the key).
    """
    try:
        data = tomllib.loads(notice.text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{notice.origin}: not valid TOML: {exc}") from exc
    return _parse_file(notice.origin, notice.year, data)


def notice_year(file_name: str) -> int:
    """The year of a notice file named ``CN-<year>.toml``.

    Raises:
        ConfigError: the name does not have that form.
    """
    match = _FILE_NAME.match(file_name)
    if match is None:
        raise ConfigError(f"{file_name}: holiday files must be named CN-<year>.toml")
    return int(match.group(1))


def calendar_from_files(paths: Iterable[Path], notices: Iterable[Notice] = ()) -> HolidayCalendar:
    """Build a calendar from explicit holiday files, then ``notices`` (see :func:`load_calendar`).

    A notice for a year that a file also covers replaces the file: an imported notice is the
    later, explicit word.
    """
    return calendar_from_notices([*read_notice_files(paths), *notices])


def notices_in(directory: Path | str) -> list[Notice]:
    """The notices of the ``CN-<year>.toml`` files of ``directory`` (blocking file reads)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise ConfigError(f"holiday calendar directory {folder} does not exist")
    return read_notice_files(sorted(folder.glob("*.toml")))


def read_notice_files(paths: Iterable[Path]) -> list[Notice]:
    """Read holiday files into notices (blocking; the file name gives the year)."""
    read: list[Notice] = []
    for path in paths:
        year = notice_year(path.name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text: {exc}") from exc
        read.append(Notice(year=year, origin=str(path), text=text))
    return read


def calendar_from_notices(notices: Iterable[Notice]) -> HolidayCalendar:
    """Build a calendar from notices; of two for one year the later one wins."""
    by_year: dict[int, Notice] = {}
    for notice in notices:
        by_year[notice.year] = notice
    holidays: set[dt.date] = set()
    workdays: set[dt.date] = set()
    unverified: set[int] = set()
    all_blocks: list[Holiday] = []
    for year in sorted(by_year):
        notice = by_year[year]
        path = notice.origin
        blocks, verified = parse_notice(notice)
        if not verified:
            unverified.add(year)
            logger.warning(
                "holiday file %s is marked unverified: check it against the notice", path
            )
        for block in blocks:
            day = block.first
            while day <= block.last:
                if day in workdays:
                    raise ConfigError(f"{path}: {day} is both a holiday and an adjusted workday")
                holidays.add(day)
                day += _ONE_DAY
            for w in block.workdays:
                if w in holidays:
                    raise ConfigError(f"{path}: {w} is both a holiday and an adjusted workday")
                workdays.add(w)
        all_blocks.extend(blocks)
    return HolidayCalendar(
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        years=frozenset(by_year),
        unverified_years=frozenset(unverified),
        blocks=tuple(sorted(all_blocks, key=lambda b: b.first)),
    )
