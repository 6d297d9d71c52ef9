"""Statistics of a period: JSON, CSV and the printable report."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import urllib.parse
from collections.abc import Callable
from typing import Annotated, Any, get_args

from aiohttp import web
from pydantic import BaseModel, Field

from config.errors import ValidationError
from records import accounts, bureau_report, sessions, statistics
from records.base import utcnow
from records.deadlines import CHINA_TZ
from records.lifecycle import (
    STATE_LABELS_ZH,
    ItemState,
)
from records.policy import Action, UnitTarget
from records.principals import Principal
from records.report_records import report_figures
from web import keys
from web.auth import authorize, remote_of, require_official
from web.input import query_int
from web.items.common import (
    MAX_ID,
    UNIT_PARAM,
    CountBy,
    cn_date,
    existing_unit,
    query_date,
    scope_units,
    unit_name,
)
from web.items.statwire import Report
from web.items.visits import visits_section
from web.rest import operation, reply
from web.templates import render

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


def figure_links(
    report: statistics.AnnualReport,
    unit_id: int | None,
    by: str,
    prefix: str = "/api/stats/records",
) -> dict[str, str]:
    """For every figure of ``report``: the URL listing its records (same period and unit)."""
    base: dict[str, str] = {"start": report.start.isoformat(), "end": report.end.isoformat()}
    if unit_id is not None:
        base["unit_id"] = str(unit_id)
    if by != "registering":
        base["by"] = by
    return {
        figure: f"{prefix}?{urllib.parse.urlencode({'figure': figure, **base})}"
        for figure in [*report_figures(report), "supervision"]
    }


def _rate_json(r: statistics.Rate) -> dict[str, Any]:
    return {
        "numerator": r.numerator,
        "denominator": r.denominator,
        "percent": None if r.percent is None else float(r.percent),
    }


def _breakdown_json(b: statistics.Breakdown) -> dict[str, Any]:
    return {
        "name": b.name,
        "counts": dict(b.counts),
        "sum": b.sum,
        "total": b.total,
        "total_name": b.total_name,
        "mismatch": b.mismatch(),
    }


def report_json(r: statistics.AnnualReport) -> dict[str, Any]:
    """The wire form of the statistics of a period."""
    return {
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "unit_count": r.unit_count,
        "received": r.received,
        "concluded": r.concluded,
        "in_progress": r.in_progress,
        "closed_otherwise": r.closed_otherwise,
        "transfers": r.transfers,
        "assignments": r.assignments,
        "rates": {
            "completion": _rate_json(r.completion_rate),
            "timely_acceptance": _rate_json(r.timely_acceptance_rate),
            "on_time_completion": _rate_json(r.on_time_completion_rate),
            "satisfaction": _rate_json(r.satisfaction_rate),
            "participation": _rate_json(r.participation_rate),
        },
        "from_above": [
            {
                "level": lf.level.value,
                "assigned": lf.assigned,
                "led_by_other_unit": lf.led_by_other_unit,
                "resolved": lf.resolved,
                "resolution_rate": _rate_json(lf.resolution_rate),
            }
            for lf in r.from_above
        ],
        "by_channel": _breakdown_json(r.by_channel),
        "by_online_platform": _breakdown_json(r.by_online_platform),
        "by_type": _breakdown_json(r.by_type),
        "by_state": _breakdown_json(r.by_state),
        "by_category": _breakdown_json(r.by_category),
        "by_subject_unit": _breakdown_json(r.by_subject_unit),
        "top_categories": [[k, n] for k, n in r.top_categories],
        "top_subject_units": [[k, n] for k, n in r.top_subject_units],
        "mismatches": list(r.mismatches),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class _StatsQuery:
    start: dt.date
    end: dt.date
    unit_id: int | None
    unit_ids: list[int] | None
    by: CountBy


async def _stats_query(request: web.Request) -> tuple[Principal, _StatsQuery]:
    p = require_official(request)
    year = query_int(request, "year", lo=2000, hi=2100, default=0) or None
    start = query_date(request, "start")
    end = query_date(request, "end")
    if year is not None:
        start = start or dt.date(year, 1, 1)
        end = end or dt.date(year + 1, 1, 1)
    if start is None or end is None:
        raise ValidationError("give 'year', or 'start' and 'end' (YYYY-MM-DD, end exclusive)")
    if not start < end or (end - start).days > 3700:
        raise ValidationError(f"period {start} .. {end}: start before end, at most 10 years")
    unit_id = query_int(request, "unit_id", lo=1, hi=MAX_ID, default=0) or None
    if unit_id is not None:
        existing_unit(request, unit_id)
    assert p.unit_id is not None
    await authorize(request, Action.VIEW_STATS, UnitTarget(unit_id or p.unit_id))
    by_raw = request.query.get("by", "registering")
    if by_raw not in get_args(CountBy):
        raise ValidationError(f"query parameter 'by'={by_raw!r:.20}: registering or handling")
    by: CountBy = "handling" if by_raw == "handling" else "registering"
    return p, _StatsQuery(start, end, unit_id, scope_units(request, p, unit_id), by)


async def _report(request: web.Request) -> tuple[Principal, _StatsQuery, statistics.AnnualReport]:
    p, q = await _stats_query(request)
    async with request.app[keys.STORE].transaction() as tx:
        report = await statistics.annual_report(
            tx, start=q.start, end=q.end, unit_ids=q.unit_ids, by=q.by
        )
        await accounts.audit(
            tx,
            p.ref,
            "view_stats",
            "unit",
            str(q.unit_id or ""),
            remote=remote_of(request),
            detail={"start": q.start.isoformat(), "end": q.end.isoformat()},
        )
    return p, q, report


class StatsQuery(BaseModel):
    """The period (a year, or start and end) and the unit subtree."""

    year: Annotated[int | None, Field(ge=2000, le=2100)] = None
    start: Annotated[dt.date | None, Field(description="first day (with end; overrides year)")] = (
        None
    )
    end: Annotated[dt.date | None, Field(description="the day after the last day")] = None
    unit_id: UNIT_PARAM = None
    by: CountBy | None = None


@routes.get("/api/stats")
@operation(
    "Statistics of a period for a unit subtree", tag="stats", response=Report, query=StatsQuery
)
async def stats(request: web.Request) -> web.Response:
    """Statistics of a period for a unit subtree (the whole district for the bureau)."""
    _p, q, report = await _report(request)
    body = report_json(report)
    body["unit_id"] = q.unit_id
    body["by"] = q.by
    # each figure's records: GET the link (the dashboard opens /items with its query)
    body["links"] = figure_links(report, q.unit_id, q.by)
    async with request.app[keys.STORE].transaction() as tx:
        held = await sessions.session_statistics(
            tx,
            start=dt.datetime.combine(q.start, dt.time(), CHINA_TZ),
            end=dt.datetime.combine(q.end, dt.time(), CHINA_TZ),
            unit_ids=q.unit_ids,
        )
    # per-unit and per-rating counts: JSON object keys are strings
    body["sessions"] = {
        k: {str(key): n for key, n in v.items()} if isinstance(v, dict) else v
        for k, v in dataclasses.asdict(held).items()
    }
    body["visits"] = await visits_section(
        request, start=q.start, end=q.end, unit_ids=q.unit_ids, as_of=report.as_of
    )
    return reply(Report.model_validate(body))


@routes.get("/api/stats/csv")
@operation(
    "The statistics as CSV",
    tag="stats",
    query=StatsQuery,
    media={"text/csv": {"type": "string"}},
)
async def stats_csv(request: web.Request) -> web.Response:
    """The statistics as CSV (UTF-8 with a byte-order mark, for spreadsheet programs)."""
    _p, q, report = await _report(request)
    body = await asyncio.to_thread(statistics.report_csv, report)
    name = f"petition-stats-{q.start.isoformat()}-{q.end.isoformat()}.csv"
    return web.Response(
        body=("\ufeff" + body).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


_CHANNEL_ZH = {
    "letter": "来信",
    "visit": "来访",
    "online": "网上信访",
    "phone": "电话",
    "fax": "传真",
    "video": "视频信访",
}
_TYPE_ZH = {"suggestion": "建议意见", "accusation": "检举控告", "complaint": "申诉求决"}
_LEVEL_ZH = {"central": "中央", "provincial": "省级", "municipal": "市级"}
#: the matter categories the terminals offer (web/static/js/i18n.js cat_*), for the report
_CATEGORY_ZH = {
    "housing": "房屋与拆迁",
    "labour": "劳动与社保",
    "land": "土地与规划",
    "welfare": "民政与救助",
    "law": "政法与治安",
    "other": "其他事项",
}
#: what a breakdown is of, and what its total is, as the printed report names them
_BREAKDOWN_ZH = {
    "channel": "按渠道",
    "online platform": "网上信访按平台",
    "type": "按类型",
    "state": "按办理状态",
    "category": "按类别",
    "unit complained about": "被反映单位",
    "concluded / in progress / closed otherwise": "已办结、正在办理与其他方式结束",
}
_TOTAL_ZH = {
    "received": "受理信访事项",
    "online": "网上信访",
    "items naming a unit": "反映具体单位的事项",
}


def _mismatch_zh(b: statistics.Breakdown) -> str | None:
    """The report's check of one breakdown, in Chinese (None when it adds up)."""
    if b.sum == b.total:
        return None
    return (
        f"{_BREAKDOWN_ZH.get(b.name, b.name)}各项之和为 {b.sum}，"
        f"而{_TOTAL_ZH.get(b.total_name, b.total_name)}总数为 {b.total}"
    )


def report_html(
    report: statistics.AnnualReport,
    scope: str,
    unit_name: Callable[[int | None], str],
    visits: dict[str, Any] | None = None,
    links: dict[str, str] | None = None,
) -> str:
    """The printable report (Chinese), mismatches shown first.

    ``links`` (figure key -> URL, see :func:`figure_links`) turns each count into a link to
    the list of the records it counts.
    """
    hrefs = links or {}

    def linked(figure: str, n: int) -> object:
        href = hrefs.get(figure)
        return {"text": n, "href": href} if href else n

    last_day = report.end - dt.timedelta(days=1)
    if (
        report.start.month == 1
        and report.start.day == 1
        and report.end == dt.date(report.start.year + 1, 1, 1)
    ):
        title = f"{report.start.year}年度信访工作报告"
    else:
        title = "信访工作统计报告"

    def counts(
        b: statistics.Breakdown, kind: str, names: dict[str, str] | None = None
    ) -> list[list[object]]:
        rows: list[list[object]] = [
            [(names or {}).get(k, k), linked(f"{kind}:{k}", n)] for k, n in b.counts.items()
        ]
        total = _TOTAL_ZH.get(b.total_name, b.total_name)
        rows.append([f"合计（{total}总数 {b.total}）", b.sum])
        return rows

    rates = [
        ("办结率", report.completion_rate),
        ("按期受理率", report.timely_acceptance_rate),
        ("按期办结率", report.on_time_completion_rate),
        ("满意率", report.satisfaction_rate),
        ("参评率", report.participation_rate),
    ]
    subject_names = {k: unit_name(int(k)) or k for k in report.by_subject_unit.counts}

    def change(value: float | None) -> str:
        return "—（上年同期为0）" if value is None else f"{value:+.2f}%"

    visit_rows = [
        [
            k["label"],
            k["batches"],
            k["persons"],
            f"{k['collective_batches']}批/{k['collective_persons']}人次",
            f"{k['previous']['batches']}批/{k['previous']['persons']}人次",
            change(k["change_percent"]["batches"]),
            change(k["change_percent"]["persons"]),
        ]
        for k in (visits or {}).get("kinds", [])
    ]
    supervision = (visits or {}).get("supervision")
    return render(
        "report.html",
        {
            "title": title,
            "period": f"{cn_date(report.start)}至{cn_date(last_day)}",
            "scope": scope,
            "generated_at": utcnow()
            .astimezone(dt.timezone(dt.timedelta(hours=8)))
            .strftime("%Y-%m-%d %H:%M"),
            "mismatches": [
                m
                for b in (
                    report.by_channel,
                    report.by_online_platform,
                    report.by_type,
                    report.by_state,
                    report.by_category,
                    report.by_subject_unit,
                    statistics.Breakdown(
                        "concluded / in progress / closed otherwise",
                        {
                            "concluded": report.concluded,
                            "in_progress": report.in_progress,
                            "closed_otherwise": report.closed_otherwise,
                        },
                        report.received,
                        "received",
                    ),
                )
                if (m := _mismatch_zh(b)) is not None
            ],
            "totals": [
                ["受理信访事项（收到）", linked("received", report.received)],
                ["已办结", linked("concluded", report.concluded)],
                ["正在办理", linked("in_progress", report.in_progress)],
                [
                    "其他方式结束（导入法定途径、不予受理）",
                    linked("closed_otherwise", report.closed_otherwise),
                ],
                ["转送", linked("transfers", report.transfers)],
                ["交办", linked("assignments", report.assignments)],
            ],
            "rates": [[n, str(r), r.numerator, r.denominator] for n, r in rates],
            "levels": [
                [
                    _LEVEL_ZH.get(lf.level.value, lf.level.value),
                    linked(f"from_above:{lf.level.value}", lf.assigned),
                    linked(f"led_by_other_unit:{lf.level.value}", lf.led_by_other_unit),
                    linked(f"resolved:{lf.level.value}", lf.resolved),
                    str(lf.resolution_rate),
                ]
                for lf in report.from_above
            ],
            "by_channel": counts(report.by_channel, "channel", _CHANNEL_ZH),
            "by_platform": counts(report.by_online_platform, "online_platform"),
            "by_type": counts(report.by_type, "type", _TYPE_ZH),
            "by_state": counts(
                report.by_state, "state", {s.value: STATE_LABELS_ZH[s] for s in ItemState}
            ),
            "top_categories": [
                [_CATEGORY_ZH.get(k, k), linked(f"category:{k}", n)]
                for k, n in report.top_categories
            ],
            "top_units": [
                [subject_names.get(k, k), linked(f"subject_unit:{k}", n)]
                for k, n in report.top_subject_units
            ],
            "visits": visit_rows,
            "supervision": (
                [
                    ["督办次数", linked("supervision", supervision["supervisions"])],
                    ["督办事项", supervision["items"]],
                ]
                if supervision
                else []
            ),
        },
    )


@routes.get("/api/stats/report")
@operation(
    "The (annual) report as printable HTML, mismatches shown",
    tag="stats",
    query=StatsQuery,
    media={"text/html": {"type": "string"}},
)
async def stats_report(request: web.Request) -> web.Response:
    """The annual (or any period's) report as printable HTML."""
    p, q, report = await _report(request)
    scope = unit_name(request, q.unit_id) if q.unit_id else unit_name(request, p.unit_id)
    if q.unit_ids is None:
        scope = "全区"

    def name(unit_id: int | None) -> str:
        return unit_name(request, unit_id)

    visits = await visits_section(
        request, start=q.start, end=q.end, unit_ids=q.unit_ids, as_of=report.as_of
    )
    # each count opens the items page listing the records it counts
    links = figure_links(report, q.unit_id, q.by, prefix="/items")
    body = await asyncio.to_thread(report_html, report, scope, name, visits, links)
    return web.Response(text=body, content_type="text/html", charset="utf-8")


def bureau_report_html(report: bureau_report.BureauReport, scope: str) -> str:
    """The report as a bureau files it (Chinese sections), inconsistencies named first."""
    last_day = report.end - dt.timedelta(days=1)
    return render(
        "bureau_report.html",
        {
            "title": report.title,
            "period": f"{cn_date(report.start)}至{cn_date(last_day)}",
            "scope": scope,
            "as_of": report.as_of.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
            "inconsistencies": list(report.inconsistencies),
            "sections": [
                {
                    "heading": s.heading,
                    "rows": [[r.label, r.value, r.previous or "", r.change or ""] for r in s.rows],
                }
                for s in report.sections
            ],
        },
    )


@routes.get("/api/stats/bureau-report")
@operation(
    "The report a bureau files: Chinese sections, year-on-year change, every sum checked and "
    "inconsistencies named",
    tag="stats",
    query=StatsQuery,
    media={"text/html": {"type": "string"}},
)
async def stats_bureau_report(request: web.Request) -> web.Response:
    """The report a bureau files: Chinese sections, year-on-year change, sums checked."""
    p, q = await _stats_query(request)
    async with request.app[keys.STORE].transaction() as tx:
        report = await bureau_report.bureau_report(
            tx, start=q.start, end=q.end, unit_ids=q.unit_ids
        )
        await accounts.audit(
            tx,
            p.ref,
            "view_bureau_report",
            "unit",
            str(q.unit_id or ""),
            remote=remote_of(request),
            detail={"start": q.start.isoformat(), "end": q.end.isoformat()},
        )
    if q.unit_ids is None:
        scope = "全区"
    else:
        scope = unit_name(request, q.unit_id) if q.unit_id else unit_name(request, p.unit_id)
    body = await asyncio.to_thread(bureau_report_html, report, scope)
    return web.Response(text=body, content_type="text/html", charset="utf-8")
