"""The annual report a district bureau files, in its Chinese section structure, every sum checked.

Sections follow a real district report: 一、总体情况 (items received, concluded, completion
rate), 二、信访渠道 (channels, the online platforms), 三、来访情况 (batches and person-times,
collective visits, visits to higher levels), 四、领导接访和下访, 五、上级交办事项 (by level,
resolution rate), 六、信访积案, 七、督办, each figure with the same period a year before and the
change (同比). Every breakdown is checked against its total and each inconsistency is named
in Chinese ("各渠道件数之和为613件，与网上信访总数619件不符（相差6件）").

Item figures come from :func:`records.statistics.annual_report`, visits and supervision from
:mod:`records.items.visits`; both periods are read as of the same ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from records.deadlines import CHINA_TZ
from records.item_models import BacklogCase, ItemRow, OriginLevel, VisitKind
from records.items.visits import VisitFigures, supervision_count, visit_figures
from records.lifecycle import ItemState
from records.statistics import (
    AnnualReport,
    Breakdown,
    Rate,
    annual_report,
    previous_period,
    year_on_year,
)

__all__ = [
    "BacklogFigures",
    "BureauReport",
    "ReportRow",
    "ReportSection",
    "backlog_figures",
    "bureau_report",
]

CHANNEL_ZH = {
    "letter": "来信",
    "visit": "来访",
    "online": "网上信访",
    "phone": "电话",
    "fax": "传真",
    "video": "视频信访",
}
LEVEL_ZH = {
    OriginLevel.CENTRAL: "中央",
    OriginLevel.PROVINCIAL: "省级",
    OriginLevel.MUNICIPAL: "市级",
}


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One figure: its label, value, the value a year before and the change (同比)."""

    label: str
    value: str
    previous: str | None = None
    change: str | None = None


@dataclass(frozen=True, slots=True)
class ReportSection:
    """A numbered section (一、总体情况) with its rows."""

    heading: str
    rows: tuple[ReportRow, ...]


@dataclass(frozen=True, slots=True)
class BacklogFigures:
    """Backlog cases (信访积案) of items of the units, as of a date.

    Attributes:
        total: cases flagged before ``as_of``.
        flagged: of those, flagged within the period.
        closed: closed (销号) before ``as_of``.
        open: not closed before ``as_of``.
        resolved: cases whose item is resolved (化解) today.
    """

    total: int
    flagged: int
    closed: int
    open: int
    resolved: int


@dataclass(frozen=True, slots=True)
class BureauReport:
    """The filed report: sections in order, and every inconsistency found, in Chinese."""

    title: str
    start: dt.date
    end: dt.date
    as_of: dt.datetime
    sections: tuple[ReportSection, ...]
    inconsistencies: tuple[str, ...]

    def section(self, heading_start: str) -> ReportSection:
        """The section whose heading starts with ``heading_start`` (e.g. ``"三、"``)."""
        return next(s for s in self.sections if s.heading.startswith(heading_start))


def _pieces(n: int, unit: str) -> str:
    return f"{n}{unit}"


def _change(current: int, previous: int) -> str:
    change = year_on_year(current, previous)
    if change is None:
        return "上年同期为0" if current else "持平"
    if change == 0:
        return "持平"
    return f"{'上升' if change > 0 else '下降'}{abs(change)}%"


def _row(label: str, current: int, previous: int, unit: str = "件") -> ReportRow:
    return ReportRow(
        label, _pieces(current, unit), _pieces(previous, unit), _change(current, previous)
    )


def _rate_row(label: str, current: Rate, previous: Rate) -> ReportRow:
    if current.percent is None or previous.percent is None:
        change = None
    else:
        diff = current.percent - previous.percent
        change = "持平" if diff == 0 else f"{'提高' if diff > 0 else '降低'}{abs(diff)}个百分点"
    return ReportRow(label, str(current), str(previous), change)


def _check(b: Breakdown, what: str, total_what: str, unit: str = "件") -> list[str]:
    if b.sum == b.total:
        return []
    return [
        f"{what}之和为{b.sum}{unit}，与{total_what}{b.total}{unit}不符"
        f"（相差{abs(b.total - b.sum)}{unit}）"
    ]


async def backlog_figures(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None,
    as_of: dt.datetime,
) -> BacklogFigures:
    """Backlog cases of items registered or handled by ``unit_ids`` (None: all), as of a date.

    ``resolved`` reads the item's flag as it is today (the flag has no history yet).
    """
    c, t = BacklogCase, ItemRow
    start_at = dt.datetime.combine(start, dt.time(), CHINA_TZ)
    end_at = dt.datetime.combine(end, dt.time(), CHINA_TZ)
    q = (
        select(
            func.count(),
            func.count().filter(and_(c.flagged_at >= start_at, c.flagged_at < end_at)),
            func.count(c.closed_at).filter(c.closed_at < as_of),
            func.count().filter(t.resolved.is_(True)),
        )
        .select_from(c)
        .join(t, t.id == c.item_id)
        .where(c.flagged_at < as_of)
    )
    if unit_ids is not None:
        ids = list(unit_ids)
        q = q.where(or_(t.registering_unit_id.in_(ids), t.handling_unit_id.in_(ids)))
    total, flagged, closed, resolved = (await session.execute(q)).one()
    total, closed = int(total), int(closed)
    return BacklogFigures(
        total=total,
        flagged=int(flagged),
        closed=closed,
        open=total - closed,
        resolved=int(resolved),
    )


async def bureau_report(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None = None,
    as_of: dt.datetime | None = None,
) -> BureauReport:
    """The report as filed for ``[start, end)``, with the same period a year before."""
    now = await annual_report(session, start=start, end=end, unit_ids=unit_ids, as_of=as_of)
    when = now.as_of
    p_start, p_end = previous_period(start, end)
    before = await annual_report(session, start=p_start, end=p_end, unit_ids=unit_ids, as_of=when)
    visits = await visit_figures(session, start=start, end=end, unit_ids=unit_ids, as_of=when)
    visits_before = await visit_figures(
        session, start=p_start, end=p_end, unit_ids=unit_ids, as_of=when
    )
    sup = await supervisions_as_of(session, start, end, unit_ids, when)
    sup_before = await supervisions_as_of(session, p_start, p_end, unit_ids, when)
    backlog = await backlog_figures(session, start=start, end=end, unit_ids=unit_ids, as_of=when)
    sections, problems = _sections(now, before, visits, visits_before, sup, sup_before, backlog)
    whole_year = start.month == 1 and start.day == 1 and end == dt.date(start.year + 1, 1, 1)
    title = f"{start.year}年度信访工作情况报告" if whole_year else "信访工作情况报告"
    return BureauReport(
        title=title,
        start=start,
        end=end,
        as_of=when,
        sections=sections,
        inconsistencies=tuple(problems),
    )


async def supervisions_as_of(
    session: AsyncSession,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None,
    as_of: dt.datetime,
) -> tuple[int, int]:
    """Supervisions of the days ``[start, end)`` recorded before ``as_of``: (count, items)."""
    start_at = dt.datetime.combine(start, dt.time(), CHINA_TZ)
    end_at = min(dt.datetime.combine(end, dt.time(), CHINA_TZ), as_of)
    if end_at <= start_at:
        return 0, 0
    return await supervision_count(session, start=start_at, end=end_at, unit_ids=unit_ids)


def _state(report: AnnualReport, state: ItemState) -> int:
    return report.by_state.counts.get(state.value, 0)


def _sections(
    now: AnnualReport,
    before: AnnualReport,
    visits: VisitFigures,
    visits_before: VisitFigures,
    sup: tuple[int, int],
    sup_before: tuple[int, int],
    backlog: BacklogFigures,
) -> tuple[tuple[ReportSection, ...], list[str]]:
    problems: list[str] = []
    overall = ReportSection(
        "一、总体情况",
        (
            _row("受理信访事项", now.received, before.received),
            _row("已办结", now.concluded, before.concluded),
            _row("正在办理", now.in_progress, before.in_progress),
            _row(
                "其中部分办结",
                _state(now, ItemState.PART_CONCLUDED),
                _state(before, ItemState.PART_CONCLUDED),
            ),
            _row(
                "其中已上报待确认",
                _state(now, ItemState.REPORTED),
                _state(before, ItemState.REPORTED),
            ),
            _row(
                "其他方式结束（导入法定途径、不予受理）",
                now.closed_otherwise,
                before.closed_otherwise,
            ),
            _rate_row("办结率", now.completion_rate, before.completion_rate),
            _rate_row("按期受理率", now.timely_acceptance_rate, before.timely_acceptance_rate),
            _rate_row("按期办结率", now.on_time_completion_rate, before.on_time_completion_rate),
            _rate_row("满意率", now.satisfaction_rate, before.satisfaction_rate),
            _row("转送", now.transfers, before.transfers),
            _row("交办", now.assignments, before.assignments),
        ),
    )
    parts = now.concluded + now.in_progress + now.closed_otherwise
    if parts != now.received:
        problems.append(
            f"已办结、正在办理、其他方式结束之和为{parts}件，与受理信访事项{now.received}件不符"
            f"（相差{abs(now.received - parts)}件）"
        )

    channel_rows = [
        _row(
            CHANNEL_ZH.get(key, key),
            now.by_channel.counts.get(key, 0),
            before.by_channel.counts.get(key, 0),
        )
        for key in CHANNEL_ZH
        if now.by_channel.counts.get(key, 0) or before.by_channel.counts.get(key, 0)
    ]
    platforms = list(now.by_online_platform.counts)
    platforms += [k for k in before.by_online_platform.counts if k not in platforms]
    platform_rows = [
        _row(
            f"其中{name}",
            now.by_online_platform.counts.get(name, 0),
            before.by_online_platform.counts.get(name, 0),
        )
        for name in platforms
    ]
    channels = ReportSection("二、信访渠道", (*channel_rows, *platform_rows))
    problems += _check(now.by_channel, "各渠道件数", "受理信访事项")
    problems += _check(now.by_online_platform, "网上信访各平台件数", "网上信访总数")

    def batches(kind: VisitKind, label: str) -> list[ReportRow]:
        k, b = visits.of(kind), visits_before.of(kind)
        return [
            _row(f"{label}批次", k.batches, b.batches, "批"),
            _row(f"{label}人次", k.persons, b.persons, "人次"),
        ]

    walk, walk_before = visits.of(VisitKind.WALK_IN), visits_before.of(VisitKind.WALK_IN)
    visit_section = ReportSection(
        "三、来访情况",
        (
            *batches(VisitKind.WALK_IN, "接待群众来访"),
            _row("其中集体访批次", walk.collective_batches, walk_before.collective_batches, "批"),
            _row("其中集体访人次", walk.collective_persons, walk_before.collective_persons, "人次"),
            *batches(VisitKind.TO_CITY, "赴市上访"),
            *batches(VisitKind.TO_PROVINCE, "赴省上访"),
            *batches(VisitKind.TO_BEIJING, "进京上访"),
        ),
    )
    leaders = ReportSection(
        "四、领导接访和下访",
        (
            *batches(VisitKind.LEADER_RECEPTION, "领导接访"),
            *batches(VisitKind.OUTREACH, "领导下访"),
        ),
    )
    visit_items = now.by_channel.counts.get("visit", 0)
    if visit_items > walk.batches + visits.of(VisitKind.LEADER_RECEPTION).batches:
        problems.append(
            f"来访渠道登记信访事项{visit_items}件，多于接待来访及领导接访批次之和"
            f"{walk.batches + visits.of(VisitKind.LEADER_RECEPTION).batches}批（来访未全部登记）"
        )

    levels_before = {lf.level: lf for lf in before.from_above}
    above_rows: list[ReportRow] = []
    for lf in now.from_above:
        lb = levels_before.get(lf.level)
        name = LEVEL_ZH[lf.level]
        above_rows.append(_row(f"{name}交办", lf.assigned, lb.assigned if lb else 0))
        above_rows.append(
            _row(
                f"{name}交办其中他单位牵头（不计入化解率）",
                lf.led_by_other_unit,
                lb.led_by_other_unit if lb else 0,
            )
        )
        above_rows.append(_row(f"{name}交办已化解", lf.resolved, lb.resolved if lb else 0))
        if lb is not None:
            above_rows.append(
                _rate_row(f"{name}交办化解率", lf.resolution_rate, lb.resolution_rate)
            )
        else:
            above_rows.append(ReportRow(f"{name}交办化解率", str(lf.resolution_rate)))
        counted = lf.assigned - lf.led_by_other_unit
        if lf.resolved > counted:
            problems.append(f"{name}交办已化解{lf.resolved}件，多于计入化解率的{counted}件")
    above = ReportSection("五、上级交办事项", tuple(above_rows))

    backlog_section = ReportSection(
        "六、信访积案",
        (
            ReportRow("积案总数", _pieces(backlog.total, "件")),
            ReportRow("其中本期新增", _pieces(backlog.flagged, "件")),
            ReportRow("已销号", _pieces(backlog.closed, "件")),
            ReportRow("未销号", _pieces(backlog.open, "件")),
            ReportRow("已化解", _pieces(backlog.resolved, "件")),
        ),
    )
    if backlog.closed > backlog.resolved:
        problems.append(
            f"已销号积案{backlog.closed}件，多于已化解积案{backlog.resolved}件（未化解即销号）"
        )
    supervision = ReportSection(
        "七、督办",
        (
            _row("督办次数", sup[0], sup_before[0], "次"),
            _row("督办事项", sup[1], sup_before[1]),
        ),
    )
    sections = (overall, channels, visit_section, leaders, above, backlog_section, supervision)
    return sections, problems
