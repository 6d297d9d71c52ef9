"""The annual report: SQL aggregates equal totals computed independently; mismatches shown."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from records.item_models import ItemRow, ItemTransfer
from records.lookup import new_code
from records.statistics import annual_report, rate, report_csv

UTC = dt.UTC
CHANNELS = ["letter", "visit", "online", "phone", "fax", "video"]
PLATFORMS = ["人民网领导留言板", "国家信访平台", "省长信箱", "市长信箱", "区领导信箱"]
STATES = ["registered", "accepted", "opinion_issued", "concluded", "diverted", "not_accepted"]


def generate(n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        channel = rnd.choice(CHANNELS)
        state = rnd.choice(STATES)
        rows.append(
            {
                "id": f"{seed:04d}{i:028d}",
                "lookup_code": new_code(),
                "rule_set": "2022",
                "state": state,
                "version": 1,
                "type": rnd.choice(["suggestion", "accusation", "complaint"]),
                "category": rnd.choice(["城乡建设", "劳动社保", "自然资源", "卫生健康"]),
                "request": "r",
                "facts": "",
                "reasons": "",
                "channel": channel,
                "online_platform": rnd.choice(PLATFORMS) if channel == "online" else None,
                "origin_level": rnd.choice([None, None, "central", "provincial", "municipal"]),
                "led_by_other_unit": rnd.random() < 0.1,
                "urgent": False,
                "major": False,
                "confidential": False,
                "anonymous": False,
                "is_group": False,
                "registering_unit_id": rnd.randint(1, 12),
                "subject_unit_id": rnd.choice([None, 30, 31, 32]),
                # 2023-12-31 16:00 UTC is 2024-01-01 00:00 in Beijing: edges are included
                "registered_at": dt.datetime(2023, 12, 31, 16, tzinfo=UTC)
                + dt.timedelta(minutes=rnd.randint(0, 60 * 24 * 366 - 1)),
                "resolved": rnd.random() < 0.6,
                "accepted_on_time": rnd.choice([None, True, False, True]),
                "opinion_on_time": rnd.choice([None, True, True, False]),
                "eval_handling": rnd.choice([None, True, True, False])
                if state in ("opinion_issued", "concluded")
                else None,
            }
        )
    return rows


async def load(sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]) -> None:
    async with sessions() as s:
        await s.execute(insert(ItemRow), rows)
        await s.execute(
            insert(ItemTransfer),
            [
                {
                    "item_id": r["id"],
                    "kind": "assign" if r["origin_level"] else "transfer",
                    "from_unit_id": r["registering_unit_id"],
                    "to_unit_id": 40,
                    "at": r["registered_at"],
                }
                for r in rows[::3]
            ],
        )
        await s.commit()


async def test_report_equals_independent_totals(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = generate(3000, seed=7)
    # Two items outside the year, to prove the period filter.
    outside = generate(2, seed=8)
    outside[0]["registered_at"] = dt.datetime(2023, 12, 31, 15, 59, tzinfo=UTC)
    outside[1]["registered_at"] = dt.datetime(2024, 12, 31, 16, 0, tzinfo=UTC)
    await load(sessions, rows + outside)
    units = list(range(1, 9))
    mine = [r for r in rows if r["registering_unit_id"] in units]
    async with sessions() as s:
        rep = await annual_report(
            s, start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1), unit_ids=units
        )
    assert rep.received == len(mine)
    assert dict(rep.by_channel.counts) == dict(Counter(r["channel"] for r in mine))
    assert dict(rep.by_online_platform.counts) == dict(
        Counter(r["online_platform"] for r in mine if r["channel"] == "online")
    )
    concluded = sum(r["state"] == "concluded" for r in mine)
    assert rep.concluded == concluded
    assert rep.in_progress == sum(
        r["state"] in ("registered", "accepted", "opinion_issued") for r in mine
    )
    assert rep.completion_rate == rate(concluded, len(mine))
    for lf in rep.from_above:
        at_level = [r for r in mine if r["origin_level"] == lf.level.value]
        counted = [r for r in at_level if not r["led_by_other_unit"]]
        assert (lf.assigned, lf.led_by_other_unit) == (len(at_level), len(at_level) - len(counted))
        assert lf.resolution_rate == rate(sum(r["resolved"] for r in counted), len(counted))
    evaluated = [r for r in mine if r["eval_handling"] is not None]
    assert rep.satisfaction_rate == rate(
        sum(bool(r["eval_handling"]) for r in evaluated), len(evaluated)
    )
    assert rep.timely_acceptance_rate.denominator == sum(
        r["accepted_on_time"] is not None for r in mine
    )
    assert (
        rep.top_subject_units[0]
        == Counter(str(r["subject_unit_id"]) for r in mine if r["subject_unit_id"]).most_common(1)[
            0
        ]
    )
    assert rep.transfers + rep.assignments == sum(
        1 for r in rows[::3] if r["registering_unit_id"] in units
    )
    assert rep.mismatches == ()
    csv_text = report_csv(rep)
    assert f"totals,received,{len(mine)}" in csv_text
    assert "mismatch" not in csv_text


async def test_breakdown_that_does_not_sum_is_flagged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rows = generate(400, seed=3)
    online = [r for r in rows if r["channel"] == "online"]
    for r in online[:6]:
        r["online_platform"] = None  # the 2021 report: platforms add up to 613 of 619
    rows[0]["category"] = None
    await load(sessions, rows)
    async with sessions() as s:
        rep = await annual_report(s, start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1))
    assert (
        f"online platform breakdown sums to {len(online) - 6}, online total is {len(online)}"
        in rep.mismatches
    )
    assert (
        f"category breakdown sums to {len(rows) - 1}, received total is {len(rows)}"
        in rep.mismatches
    )
    assert len(rep.mismatches) == 2
    assert 'mismatch,,"online platform breakdown sums to' in report_csv(rep)


@pytest.mark.parametrize(
    ("n", "d", "expected"),
    [
        (636, 706, "90.08"),
        (1, 3, "33.33"),
        (2, 3, "66.67"),
        (1, 8, "12.50"),
        (1, 16, "6.25"),
        (1, 1600, "0.06"),
        (0, 5, "0.00"),
    ],
)
def test_rates_are_exact_and_round_half_up(n: int, d: int, expected: str) -> None:
    assert rate(n, d).percent == Decimal(expected)
    assert rate(1, 0).percent is None
    # 1/1600 = 0.0625 %: a float would be fine here, 0.125 % (1/800) shows half-up
    assert rate(1, 800).percent == Decimal("0.13")
