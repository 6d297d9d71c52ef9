"""Statistics of petition items and the annual report (Art. 41), computed with SQL aggregates.

Every figure comes from ``GROUP BY`` / ``SUM(CASE ...)`` queries over ``item_items`` (and
``item_transfers``); Python only adds up the few dozen groups the database returns. Every
breakdown is checked against its total and each difference is listed in
:attr:`AnnualReport.mismatches` ("online platform breakdown sums to 613, total is 619"),
shown, not hidden. Rates are exact fractions rounded half-up to two decimals (636/706 is
90.08 %, not the 90.01 % the 2021 report printed).

Cohort: items *registered* in ``[start, end)`` (China local days) by a unit of the given
set (``by="registering"``) or handled by one (``by="handling"``).

As of a date (DOMAIN.md: a filed statistic is reproducible): the figures are those of the
append-only history recorded before ``as_of`` (default: the end of the period, or now while
it runs). The aggregates read today's derived columns, which are exact for every item with
no event since ``as_of``; the items that changed since (found through the index on
``item_events.at``) are taken out as they are today and put back as their history stood,
both grouped in SQL. A report as of today costs one empty index range more than before.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from config.errors import ValidationError
from records.deadlines import CHINA_TZ
from records.item_models import Channel, ItemRow, ItemTransfer, OriginLevel, TransferKind
from records.lifecycle import ItemState
from records.report_scans import corrections_since, grouped_counts, no_index

__all__ = [
    "AnnualReport",
    "Breakdown",
    "LevelFigures",
    "Rate",
    "annual_report",
    "previous_period",
    "rate",
    "report_csv",
    "year_on_year",
]

_HANDLED = [
    s.value
    for s in (
        ItemState.OPINION_ISSUED,
        ItemState.REPORTED,
        ItemState.REVIEW_REQUESTED,
        ItemState.REVIEW_OPINION,
        ItemState.REREVIEW_REQUESTED,
        ItemState.REREVIEW_OPINION,
        ItemState.CONCLUDED,
    )
]
#: off the district's hands without an opinion: diverted, refused, sent outside the district
_CLOSED_OTHER = [
    ItemState.DIVERTED.value,
    ItemState.NOT_ACCEPTED.value,
    ItemState.TRANSFERRED_OUT.value,
]
_HUNDRED = Fraction(100)


@dataclass(frozen=True, slots=True)
class Rate:
    """An exact ratio with its percentage rounded half-up to 2 decimals.

    Attributes:
        numerator: the count on top.
        denominator: the count below.
        percent: ``100 * numerator / denominator`` rounded half-up, ``None`` if the
            denominator is 0.
    """

    numerator: int
    denominator: int
    percent: Decimal | None

    def __str__(self) -> str:
        return "—" if self.percent is None else f"{self.percent}%"


def rate(numerator: int, denominator: int) -> Rate:
    """The rate ``numerator / denominator`` as an exact fraction, rounded half-up."""
    if numerator < 0 or denominator < 0:
        raise ValidationError(f"a rate needs counts >= 0, got {numerator}/{denominator}")
    if denominator == 0:
        return Rate(numerator, denominator, None)
    exact = Fraction(numerator, denominator) * _HUNDRED
    # Decimal of an exact fraction: scale to hundredths, add one half, floor.
    hundredths = (exact * 100 + Fraction(1, 2)).__floor__()
    return Rate(numerator, denominator, (Decimal(hundredths) / 100).quantize(Decimal("0.01")))


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Counts per key of one dimension, with the total they should add up to.

    Attributes:
        name: what is broken down, e.g. ``"channel"``.
        counts: key -> count, largest first.
        total: the total the counts must add up to.
        total_name: what the total is, e.g. ``"received"``.
    """

    name: str
    counts: Mapping[str, int]
    total: int
    total_name: str

    @property
    def sum(self) -> int:
        """The sum of the counts."""
        return sum(self.counts.values())

    def mismatch(self) -> str | None:
        """A sentence if the counts do not add up to the total, else ``None``."""
        if self.sum == self.total:
            return None
        return f"{self.name} breakdown sums to {self.sum}, {self.total_name} total is {self.total}"


@dataclass(frozen=True, slots=True)
class LevelFigures:
    """Repeat items assigned from one level above.

    Attributes:
        level: central, provincial or municipal.
        assigned: items assigned from that level.
        led_by_other_unit: of those, items led by another unit (excluded from the rate).
        resolved: resolved items among those counted.
        resolution_rate: resolved / (assigned - led by another unit).
    """

    level: OriginLevel
    assigned: int
    led_by_other_unit: int
    resolved: int
    resolution_rate: Rate


@dataclass(frozen=True, slots=True)
class AnnualReport:
    """The figures of a period for a set of units, as the history stood at ``as_of``."""

    start: dt.date
    end: dt.date
    as_of: dt.datetime
    unit_count: int | None
    received: int
    by_channel: Breakdown
    by_online_platform: Breakdown
    by_type: Breakdown
    by_state: Breakdown
    concluded: int
    in_progress: int
    closed_otherwise: int
    completion_rate: Rate
    from_above: tuple[LevelFigures, ...]
    timely_acceptance_rate: Rate
    on_time_completion_rate: Rate
    satisfaction_rate: Rate
    participation_rate: Rate
    by_category: Breakdown
    by_subject_unit: Breakdown
    top_categories: tuple[tuple[str, int], ...]
    top_subject_units: tuple[tuple[str, int], ...]
    transfers: int
    assignments: int
    mismatches: tuple[str, ...] = field(default=())


def _instant(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), CHINA_TZ).astimezone(dt.UTC)


async def annual_report(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None = None,
    by: Literal["registering", "handling"] = "registering",
    top: int = 10,
    as_of: dt.datetime | None = None,
) -> AnnualReport:
    """The report for items registered in ``[start, end)`` in ``unit_ids`` (``None``: all).

    Args:
        session: database session.
        start: first day (China local).
        end: day after the last day.
        unit_ids: the unit subtree; ``None`` for every unit (the district).
        by: whether ``unit_ids`` selects by registering or handling unit.
        top: how many categories and units to list as "most complained about".
        as_of: the instant the history is read at: events from ``as_of`` on are ignored.
            Default: the end of the period (midnight after its last day, China time) for
            a past period, now for one still running. The same ``as_of`` gives the same
            figures whatever happens later (events are dated by ``at``; a backdated event
            dated before ``as_of`` would still change them).

    Raises:
        ValidationError: empty period, or a naive ``as_of``.
    """
    if end <= start:
        raise ValidationError(f"report period is empty: {start} .. {end}")
    if as_of is None:
        as_of = min(dt.datetime.now(dt.UTC), _instant(end))
    elif as_of.tzinfo is None:
        raise ValidationError(f"naive as_of {as_of!r}: give a timezone-aware instant")
    t = ItemRow
    unit_col: ColumnElement[int | None] = (
        t.registering_unit_id if by == "registering" else t.handling_unit_id
    ).expression
    registered_at: ColumnElement[dt.datetime] = t.registered_at.expression
    sqlite = session.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite has no hash aggregation: a GROUP BY over a range of registered_at sorted a
        # million index entries (2.3 s of the 2.3 s report). The covering indexes
        # ix_item_items_report* are led by the grouped columns, so read in index order the
        # groups arrive sorted. Unary + (a no-op on any value) hides the period and unit
        # terms from the planner, which would otherwise pick the registered_at or unit index
        # and sort; reading a whole covering index costs ~0.1 s per million items. PostgreSQL
        # hash-aggregates and plans on its own.
        registered_at = no_index(registered_at)
        unit_col = no_index(unit_col)
    where: list[ColumnElement[bool]] = [
        registered_at >= _instant(start),
        registered_at < _instant(end),
    ]
    if unit_ids is not None:
        where.append(unit_col.in_(list(unit_ids)))

    def q(*cols: Any) -> Select[Any]:
        return select(*cols).where(*where)

    # Indexable period terms for the items changed since as_of (looked up by id).
    period = [t.registered_at >= _instant(start), t.registered_at < _instant(end)]
    corrections = await corrections_since(
        session, period, as_of, unit_ids, by, sqlite, period_open=as_of < _instant(end)
    )

    channels: dict[str, int] = {}
    platforms: dict[str, int] = {}
    states: dict[str, int] = {}
    types: dict[str, int] = {}
    # accepted on time, accepted, opinion on time, opinions, satisfied, rated, naming a unit,
    # then per origin level: assigned, led by another unit, resolved (not led elsewhere)
    sums = [0] * (7 + 3 * len(OriginLevel))
    received = online = 0
    groups = [*await grouped_counts(session, q, sqlite), *corrections.groups]
    for channel, state, kind, platform, n, figures in groups:
        received += n
        channels[channel] = channels.get(channel, 0) + n
        states[state] = states.get(state, 0) + n
        types[kind] = types.get(kind, 0) + n
        if channel == Channel.ONLINE.value:
            online += n
            if platform is not None:
                platforms[platform] = platforms.get(platform, 0) + n
        for k, v in enumerate(figures):
            sums[k] += v
    accepted_ok, accepted_n, opinion_ok, opinion_n, satisfied, evaluated, with_subject = sums[:7]
    concluded = states.get(ItemState.CONCLUDED.value, 0)
    closed_other = sum(states.get(st, 0) for st in _CLOSED_OTHER)
    handled = sum(states.get(st, 0) for st in _HANDLED)
    from_above = tuple(
        LevelFigures(
            level=lv,
            assigned=sums[7 + 3 * k],
            led_by_other_unit=sums[8 + 3 * k],
            resolved=sums[9 + 3 * k],
            resolution_rate=rate(sums[9 + 3 * k], sums[7 + 3 * k] - sums[8 + 3 * k]),
        )
        for k, lv in enumerate(OriginLevel)
    )

    category_rows = (
        await session.execute(
            q(t.category, func.count())
            .where(t.category.is_not(None))
            .group_by(t.category)
            .order_by(func.count().desc(), t.category)
        )
    ).all()
    subject_rows = (
        await session.execute(
            q(t.subject_unit_id, func.count())
            .where(t.subject_unit_id.is_not(None))
            .group_by(t.subject_unit_id)
            .order_by(func.count().desc(), t.subject_unit_id)
        )
    ).all()

    tr = ItemTransfer
    tr_where: list[ColumnElement[bool]] = [
        tr.at >= _instant(start),
        tr.at < min(_instant(end), as_of),
    ]
    if unit_ids is not None:
        tr_where.append(tr.from_unit_id.in_(list(unit_ids)))
    transfer_rows = (
        await session.execute(select(tr.kind, func.count()).where(*tr_where).group_by(tr.kind))
    ).all()
    routed = {k: int(n) for k, n in transfer_rows}

    channels, platforms, states, types = (_nonzero(d) for d in (channels, platforms, states, types))
    categories = _adjusted({str(k): int(n) for k, n in category_rows}, corrections.categories)
    subjects = _adjusted({str(k): int(n) for k, n in subject_rows}, corrections.subjects)
    in_progress = received - concluded - closed_other
    by_channel = Breakdown("channel", _sorted(channels), received, "received")
    by_platform = Breakdown("online platform", _sorted(platforms), online, "online")
    by_type = Breakdown("type", _sorted(types), received, "received")
    by_state = Breakdown("state", _sorted(states), received, "received")
    by_category = Breakdown("category", categories, received, "received")
    by_subject = Breakdown(
        "unit complained about",
        subjects,
        with_subject,
        "items naming a unit",
    )
    status = Breakdown(
        "concluded / in progress / closed otherwise",
        {"concluded": concluded, "in_progress": in_progress, "closed_otherwise": closed_other},
        received,
        "received",
    )
    checks = [
        by_channel,
        by_platform,
        by_type,
        by_state,
        by_category,
        by_subject,
        status,
    ]
    mismatches = tuple(m for m in (b.mismatch() for b in checks) if m is not None)
    return AnnualReport(
        start=start,
        end=end,
        as_of=as_of,
        unit_count=None if unit_ids is None else len(set(unit_ids)),
        received=received,
        by_channel=by_channel,
        by_online_platform=by_platform,
        by_type=by_type,
        by_state=by_state,
        concluded=concluded,
        in_progress=in_progress,
        closed_otherwise=closed_other,
        completion_rate=rate(concluded, received),
        from_above=from_above,
        timely_acceptance_rate=rate(accepted_ok, accepted_n),
        on_time_completion_rate=rate(opinion_ok, opinion_n),
        satisfaction_rate=rate(satisfied, evaluated),
        participation_rate=rate(evaluated, handled),
        by_category=by_category,
        by_subject_unit=by_subject,
        top_categories=tuple(list(by_category.counts.items())[:top]),
        top_subject_units=tuple(list(by_subject.counts.items())[:top]),
        transfers=routed.get(TransferKind.TRANSFER.value, 0),
        assignments=routed.get(TransferKind.ASSIGN.value, 0),
        mismatches=mismatches,
    )


def _nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    return {k: n for k, n in counts.items() if n}


def _adjusted(counts: Mapping[str, int], delta: Mapping[str, int]) -> dict[str, int]:
    """``counts`` (largest first) plus ``delta``, re-sorted like the SQL ordering."""
    if not delta:
        return dict(counts)
    merged = dict(counts)
    for key, d in delta.items():
        merged[key] = merged.get(key, 0) + d
    return _sorted(_nonzero(merged))


def _sorted(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def report_csv(report: AnnualReport) -> str:
    """The report as CSV text (section, key, value, numerator, denominator).

    Pure and fast; for very large reports call it in a thread.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "key", "value", "numerator", "denominator"])
    w.writerow(["period", "start", report.start.isoformat(), "", ""])
    w.writerow(["period", "end_exclusive", report.end.isoformat(), "", ""])
    w.writerow(["period", "as_of", report.as_of.isoformat(), "", ""])
    w.writerow(["totals", "received", report.received, "", ""])
    w.writerow(["totals", "concluded", report.concluded, "", ""])
    w.writerow(["totals", "in_progress", report.in_progress, "", ""])
    w.writerow(["totals", "closed_otherwise", report.closed_otherwise, "", ""])
    w.writerow(["totals", "transfers", report.transfers, "", ""])
    w.writerow(["totals", "assignments", report.assignments, "", ""])

    def rate_row(section: str, key: str, r: Rate) -> None:
        w.writerow([section, key, str(r), r.numerator, r.denominator])

    rate_row("rates", "completion", report.completion_rate)
    rate_row("rates", "timely_acceptance", report.timely_acceptance_rate)
    rate_row("rates", "on_time_completion", report.on_time_completion_rate)
    rate_row("rates", "satisfaction", report.satisfaction_rate)
    rate_row("rates", "participation", report.participation_rate)
    for lf in report.from_above:
        w.writerow([f"from_above.{lf.level.value}", "assigned", lf.assigned, "", ""])
        w.writerow(
            [f"from_above.{lf.level.value}", "led_by_other_unit", lf.led_by_other_unit, "", ""]
        )
        rate_row(f"from_above.{lf.level.value}", "resolution", lf.resolution_rate)
    for b in (
        report.by_channel,
        report.by_online_platform,
        report.by_type,
        report.by_state,
        report.by_category,
        report.by_subject_unit,
    ):
        for key, n in b.counts.items():
            w.writerow([f"by {b.name}", key, n, "", ""])
        w.writerow([f"by {b.name}", f"(sum; {b.total_name} total {b.total})", b.sum, "", ""])
    for m in report.mismatches:
        w.writerow(["mismatch", "", m, "", ""])
    return buf.getvalue()


def year_on_year(current: int, previous: int) -> Decimal | None:
    """The change from ``previous`` to ``current`` in percent (同比), rounded half-up.

    ``None`` when there is nothing to compare with (``previous`` is 0).
    """
    if previous == 0:
        return None
    exact = Fraction(current - previous, previous) * _HUNDRED
    sign = -1 if exact < 0 else 1
    hundredths = (abs(exact) * 100 + Fraction(1, 2)).__floor__()
    return (Decimal(sign * hundredths) / 100).quantize(Decimal("0.01"))


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The same period one year earlier (29 February becomes the 28th)."""

    def back(day: dt.date) -> dt.date:
        try:
            return day.replace(year=day.year - 1)
        except ValueError:  # 29 February
            return day.replace(year=day.year - 1, day=28)

    return back(start), back(end)
