"""The annual report's fast path (index-ordered grouping) equals a straightforward recount.

``annual_report`` reads SQLite through covering indexes in GROUP BY order with the period and
unit terms hidden from the planner; these tests recount every figure in Python from plain
rows and check, on SQLite, that no query of the report sorts the items to group them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from records.deadlines import CHINA_TZ
from records.item_models import ItemRow, ItemTransfer
from records.statistics import AnnualReport, annual_report, rate
from tests.records.test_statistics import generate, load

UTC = dt.UTC
HANDLED = {"opinion_issued", "concluded"}


def _local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(CHINA_TZ).date()


async def straightforward(
    session: AsyncSession,
    *,
    start: dt.date,
    end: dt.date,
    unit_ids: Sequence[int] | None,
    by: Literal["registering", "handling"],
) -> dict[str, Any]:
    """Every figure recounted in Python from all rows (no SQL aggregate, no filter)."""
    rows = (await session.execute(select(ItemRow))).scalars().all()
    unit = "registering_unit_id" if by == "registering" else "handling_unit_id"
    mine = [
        r
        for r in rows
        if start <= _local_day(r.registered_at) < end
        and (unit_ids is None or getattr(r, unit) in unit_ids)
    ]
    transfers = (await session.execute(select(ItemTransfer))).scalars().all()
    routed = Counter(
        tr.kind
        for tr in transfers
        if start <= _local_day(tr.at) < end and (unit_ids is None or tr.from_unit_id in unit_ids)
    )
    levels = {}
    for level in ("central", "provincial", "municipal"):
        at_level = [r for r in mine if r.origin_level == level]
        counted = [r for r in at_level if not r.led_by_other_unit]
        levels[level] = (
            len(at_level),
            len(at_level) - len(counted),
            rate(sum(r.resolved for r in counted), len(counted)),
        )
    rated = [r for r in mine if r.eval_handling is not None]
    accepted = [r for r in mine if r.accepted_on_time is not None]
    opinions = [r for r in mine if r.opinion_on_time is not None]
    concluded = sum(r.state == "concluded" for r in mine)
    closed = sum(r.state in ("diverted", "not_accepted") for r in mine)
    return {
        "received": len(mine),
        "channel": dict(Counter(r.channel for r in mine)),
        "platform": dict(
            Counter(r.online_platform for r in mine if r.channel == "online" and r.online_platform)
        ),
        "type": dict(Counter(r.type for r in mine)),
        "state": dict(Counter(r.state for r in mine)),
        "category": dict(Counter(r.category for r in mine if r.category is not None)),
        "subject": dict(
            Counter(str(r.subject_unit_id) for r in mine if r.subject_unit_id is not None)
        ),
        "concluded": concluded,
        "closed_otherwise": closed,
        "in_progress": len(mine) - concluded - closed,
        "completion": rate(concluded, len(mine)),
        "levels": levels,
        "timely": rate(sum(bool(r.accepted_on_time) for r in accepted), len(accepted)),
        "on_time": rate(sum(bool(r.opinion_on_time) for r in opinions), len(opinions)),
        "satisfaction": rate(sum(bool(r.eval_handling) for r in rated), len(rated)),
        "participation": rate(len(rated), sum(r.state in HANDLED for r in mine)),
        "transfers": routed["transfer"],
        "assignments": routed["assign"],
        "no_platform": any(r.channel == "online" and not r.online_platform for r in mine),
        "no_category": any(r.category is None for r in mine),
    }


def figures(rep: AnnualReport) -> dict[str, Any]:
    return {
        "received": rep.received,
        "channel": dict(rep.by_channel.counts),
        "platform": dict(rep.by_online_platform.counts),
        "type": dict(rep.by_type.counts),
        "state": dict(rep.by_state.counts),
        "category": dict(rep.by_category.counts),
        "subject": dict(rep.by_subject_unit.counts),
        "concluded": rep.concluded,
        "closed_otherwise": rep.closed_otherwise,
        "in_progress": rep.in_progress,
        "completion": rep.completion_rate,
        "levels": {
            lf.level.value: (lf.assigned, lf.led_by_other_unit, lf.resolution_rate)
            for lf in rep.from_above
        },
        "timely": rep.timely_acceptance_rate,
        "on_time": rep.on_time_completion_rate,
        "satisfaction": rep.satisfaction_rate,
        "participation": rep.participation_rate,
        "transfers": rep.transfers,
        "assignments": rep.assignments,
        "no_platform": any(m.startswith("online platform") for m in rep.mismatches),
        "no_category": any(m.startswith("category") for m in rep.mismatches),
    }


@pytest.fixture
async def loaded(sessions: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    rows = generate(1500, seed=11)
    rnd = random.Random(5)
    for r in rows:
        # handled elsewhere than registered for a third, to tell by= apart
        r["handling_unit_id"] = rnd.randint(1, 12) if rnd.random() < 0.3 else None
        if rnd.random() < 0.01:
            r["category"] = None
        if r["channel"] == "online" and rnd.random() < 0.02:
            r["online_platform"] = None
        if r["state"] not in HANDLED:
            r["eval_handling"] = None
    # Items just outside the year on both sides, and one in another year entirely.
    outside = generate(3, seed=12)
    outside[0]["registered_at"] = dt.datetime(2023, 12, 31, 15, 59, tzinfo=UTC)
    outside[1]["registered_at"] = dt.datetime(2024, 12, 31, 16, 0, tzinfo=UTC)
    outside[2]["registered_at"] = dt.datetime(2022, 6, 1, 3, 0, tzinfo=UTC)
    for r in outside:
        r["handling_unit_id"] = None
    await load(sessions, rows + outside)
    return sessions


@pytest.mark.parametrize(
    ("start", "end", "units", "by"),
    [
        (dt.date(2024, 1, 1), dt.date(2025, 1, 1), None, "registering"),
        (dt.date(2024, 1, 1), dt.date(2025, 1, 1), [1, 2, 3, 4, 5], "registering"),
        (dt.date(2024, 1, 1), dt.date(2025, 1, 1), [2, 7, 9], "handling"),
        (dt.date(2024, 3, 1), dt.date(2024, 4, 1), None, "registering"),
        (dt.date(2022, 1, 1), dt.date(2026, 1, 1), [3], "registering"),
    ],
    ids=["district-year", "subtree", "by-handling", "one-month", "one-unit-wide"],
)
async def test_records_report_equals_straightforward_recount(
    loaded: async_sessionmaker[AsyncSession],
    start: dt.date,
    end: dt.date,
    units: list[int] | None,
    by: Literal["registering", "handling"],
) -> None:
    async with loaded() as s:
        rep = await annual_report(s, start=start, end=end, unit_ids=units, by=by)
        expected = await straightforward(s, start=start, end=end, unit_ids=units, by=by)
    assert expected["received"] > 0
    assert figures(rep) == expected


async def test_records_report_never_sorts_items_to_group_on_sqlite(
    loaded: async_sessionmaker[AsyncSession], item_engine: AsyncEngine
) -> None:
    if item_engine.dialect.name != "sqlite":
        pytest.skip("query plans are SQLite's; PostgreSQL hash-aggregates")
    executed: list[tuple[str, Any]] = []

    def remember(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _m: Any) -> None:
        executed.append((statement, params))

    event.listen(item_engine.sync_engine, "before_cursor_execute", remember)
    try:
        async with loaded() as s:
            await annual_report(s, start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1))
            await annual_report(
                s, start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1), unit_ids=[1, 2, 3]
            )
    finally:
        event.remove(item_engine.sync_engine, "before_cursor_execute", remember)
    # The items changed since as_of (none here) are looked up through ix_item_events_at and
    # by id: an empty index range, not a scan.
    changed = [(q, p) for q, p in executed if "item_events" in q]
    assert len(changed) == 2
    async with item_engine.connect() as conn:
        for query, params in changed:
            plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query, params)
            details = " / ".join(str(row[-1]) for row in plan)
            assert "ix_item_events_at (at>?)" in details, (query, details)
            assert "SCAN item_items" not in details, (query, details)
    item_queries = [
        (q, p) for q, p in executed if "FROM item_items" in q and "item_events" not in q
    ]
    assert len(item_queries) == 6
    async with item_engine.connect() as conn:
        for query, params in item_queries:
            plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query, params)
            details = " / ".join(str(row[-1]) for row in plan)
            # Grouping in index order, no sort: 2.3 s -> 0.5 s for a million items.
            assert "TEMP B-TREE FOR GROUP BY" not in details, (query, details)
            assert "COVERING INDEX ix_item_items_report" in details, (query, details)
    # ANALYZE statistics (skip-scan candidates) do not change the plan.
    async with item_engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
        for query, params in item_queries:
            plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query, params)
            assert "TEMP B-TREE FOR GROUP BY" not in " / ".join(str(row[-1]) for row in plan)
