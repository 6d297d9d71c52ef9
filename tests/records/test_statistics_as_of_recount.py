"""Reports as of random instants equal a recount in Python from the history before them.

Random histories (routing, objections and re-routing, acceptance, opinion, outcome, rating,
conclusion) spread over 2024 and into 2025; for several ``as_of`` every figure of the
report, by registering and by handling unit, equals what a fold of the events before
``as_of`` says.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from records.deadlines import CHINA_TZ
from records.item_models import ItemEvent, ItemRow, ItemTransfer
from records.lookup import new_code
from records.statistics import annual_report, rate

START = dt.datetime(2024, 1, 1, tzinfo=CHINA_TZ)
UNITS = [40, 41, 42]


@dataclass
class Story:
    """One item's history and the derived values it ends with."""

    item_id: str
    registered_at: dt.datetime
    registering_unit: int
    events: list[tuple[str, dt.datetime, str | None, str, dict[str, Any]]] = field(
        default_factory=list
    )
    transfers: list[dict[str, Any]] = field(default_factory=list)
    accepted_on_time: bool | None = None
    opinion_on_time: bool | None = None
    eval_handling: bool | None = None
    eval_handling_at: dt.datetime | None = None


def _story(i: int, rnd: random.Random) -> Story:
    at = START + dt.timedelta(days=rnd.randrange(366), hours=rnd.randrange(24))
    s = Story(f"rc{i:030d}", at, 1 + i % 4)
    state = "registered"

    def step(kind: str, to: str, **data: Any) -> None:
        nonlocal at, state
        at = at + dt.timedelta(days=rnd.randrange(1, 40), minutes=rnd.randrange(600))
        s.events.append((kind, at, state, to, data))
        state = to

    s.events.append(("register", at, None, "registered", {}))
    if rnd.random() < 0.1:
        return s
    unit = rnd.choice(UNITS)
    step("transfer", "transferred", to_unit_id=unit, from_unit_id=s.registering_unit)
    s.transfers.append({"to": unit, "at": at, "objected_at": None})
    step("receive", "received")
    if rnd.random() < 0.2:
        step("return", "returned")
        s.transfers[-1]["objected_at"] = at
        unit = rnd.choice(UNITS)
        step("transfer", "transferred", to_unit_id=unit, from_unit_id=s.registering_unit)
        s.transfers.append({"to": unit, "at": at, "objected_at": None})
        step("receive", "received")
    if rnd.random() < 0.1:
        return s
    step("accept", "accepted")
    s.accepted_on_time = rnd.random() < 0.8
    if rnd.random() < 0.2:
        step("note", "accepted")
    if rnd.random() < 0.15:
        return s
    step("issue_opinion", "opinion_issued")
    s.opinion_on_time = rnd.random() < 0.7
    if rnd.random() < 0.6:
        step("set_outcome", "opinion_issued", resolved=rnd.random() < 0.5)
        if rnd.random() < 0.2:
            step("set_outcome", "opinion_issued", resolved=True)
    if rnd.random() < 0.5:
        step("evaluate", "opinion_issued", stage="handling", satisfied=rnd.random() < 0.7)
        s.eval_handling, s.eval_handling_at = s.events[-1][4]["satisfied"], at
    if rnd.random() < 0.7:
        step("conclude", "concluded")
    return s


def _level(i: int) -> str | None:
    return [None, "central", "provincial", "municipal", None][i % 5]


def _rows(stories: list[Story]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
    items, events, transfers = [], [], []
    for i, s in enumerate(stories):
        resolved = False
        for kind, _, _, _, data in s.events:
            if kind == "set_outcome":
                resolved = data["resolved"]
        last = s.transfers[-1] if s.transfers else None
        handling = None
        if last is not None:
            handling = s.registering_unit if last["objected_at"] else last["to"]
        items.append(
            {
                "id": s.item_id,
                "lookup_code": new_code(),
                "rule_set": "2022",
                "state": s.events[-1][3],
                "version": 1,
                "type": ["complaint", "suggestion"][i % 2],
                "category": ["城乡建设", "劳动社保", None][i % 3],
                "request": "r",
                "channel": ["visit", "online", "video"][i % 3],
                "online_platform": "国家信访平台" if i % 3 == 1 else None,
                "origin_level": _level(i),
                "led_by_other_unit": i % 7 == 0,
                "registering_unit_id": s.registering_unit,
                "handling_unit_id": handling,
                "subject_unit_id": [None, 30, 31, 32][i % 4],
                "registered_at": s.registered_at,
                "resolved": resolved,
                "accepted_on_time": s.accepted_on_time,
                "opinion_on_time": s.opinion_on_time,
                "eval_handling": s.eval_handling,
                "eval_handling_at": s.eval_handling_at,
            }
        )
        for seq, (kind, at, before, after, data) in enumerate(s.events, start=1):
            events.append(
                {
                    "item_id": s.item_id,
                    "seq": seq,
                    "at": at,
                    "type": kind,
                    "from_state": before,
                    "to_state": after,
                    "reason": "",
                    "data": data,
                }
            )
        for tr in s.transfers:
            transfers.append(
                {
                    "item_id": s.item_id,
                    "kind": "transfer",
                    "from_unit_id": s.registering_unit,
                    "to_unit_id": tr["to"],
                    "at": tr["at"],
                    "objected_at": tr["objected_at"],
                }
            )
    return items, events, transfers


def recount(
    stories: list[Story],
    as_of: dt.datetime,
    unit_ids: list[int] | None,
    by: Literal["registering", "handling"],
) -> dict[str, Any]:
    """The figures from a fold of each item's events before ``as_of``."""
    states: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    accepted = [0, 0]
    opinions = [0, 0]
    rated = [0, 0]
    resolved_by_level: Counter[str] = Counter()
    items, _, _ = _rows(stories)
    for s, row in zip(stories, items, strict=True):
        seen = [e for e in s.events if e[1] < as_of]
        if not seen:
            continue
        unit = s.registering_unit
        if by == "handling":
            routed = [t for t in s.transfers if t["at"] < as_of]
            unit = None
            if routed:
                last = routed[-1]
                objected = last["objected_at"] is not None and last["objected_at"] < as_of
                unit = s.registering_unit if objected else last["to"]
        if unit_ids is not None and unit not in unit_ids:
            continue
        kinds = [e[0] for e in seen]
        states[seen[-1][3]] += 1
        if row["category"] is not None:
            categories[row["category"]] += 1
        if "accept" in kinds:
            accepted[0] += bool(s.accepted_on_time)
            accepted[1] += 1
        if "issue_opinion" in kinds:
            opinions[0] += bool(s.opinion_on_time)
            opinions[1] += 1
        if s.eval_handling_at is not None and s.eval_handling_at < as_of:
            rated[0] += bool(s.eval_handling)
            rated[1] += 1
        outcomes = [e[4]["resolved"] for e in seen if e[0] == "set_outcome"]
        if row["origin_level"] and not row["led_by_other_unit"] and outcomes and outcomes[-1]:
            resolved_by_level[row["origin_level"]] += 1
    return {
        "received": sum(states.values()),
        "states": dict(states),
        "categories": dict(categories),
        "timely": rate(*accepted),
        "on_time": rate(*opinions),
        "satisfaction": rate(*rated),
        "resolved": dict(resolved_by_level),
    }


@pytest.mark.parametrize("by", ["registering", "handling"])
async def test_reports_as_of_any_instant_equal_a_recount_from_history(
    sessions: async_sessionmaker[AsyncSession], by: Literal["registering", "handling"]
) -> None:
    rnd = random.Random(17)
    stories = [_story(i, rnd) for i in range(400)]
    items, events, transfers = _rows(stories)
    async with sessions() as s:
        await s.execute(insert(ItemRow), items)
        await s.execute(insert(ItemEvent), events)
        await s.execute(insert(ItemTransfer), transfers)
        await s.commit()
    cuts = [
        dt.datetime(2024, 3, 1, tzinfo=CHINA_TZ),
        dt.datetime(2024, 9, 17, 13, tzinfo=CHINA_TZ),
        dt.datetime(2025, 1, 1, tzinfo=CHINA_TZ),
        dt.datetime(2025, 2, 10, tzinfo=CHINA_TZ),
        dt.datetime(2026, 1, 1, tzinfo=CHINA_TZ),
    ]
    for unit_ids in (None, [40, 41] if by == "handling" else [1, 2]):
        for as_of in cuts:
            async with sessions() as s:
                rep = await annual_report(
                    s,
                    start=dt.date(2024, 1, 1),
                    end=dt.date(2025, 1, 1),
                    as_of=as_of,
                    unit_ids=unit_ids,
                    by=by,
                )
            want = recount(stories, as_of, unit_ids, by)
            where = (as_of, unit_ids)
            assert rep.received == want["received"], where
            assert dict(rep.by_state.counts) == want["states"], where
            assert dict(rep.by_category.counts) == want["categories"], where
            assert rep.timely_acceptance_rate == want["timely"], where
            assert rep.on_time_completion_rate == want["on_time"], where
            assert rep.satisfaction_rate == want["satisfaction"], where
            resolved = {lf.level.value: lf.resolved for lf in rep.from_above if lf.resolved}
            assert resolved == want["resolved"], where
            assert rep.by_state.sum == rep.received, where
