"""A filed report is reproducible: the 2021 figures as of 2021-12-31 after 2022 events.

The fixture has the real bureau's 2021 totals: 706 items received, 636 concluded (90.08 %).
In January 2022 ten more are concluded (the issue: today's state reads 646 / 706, 91.50 %),
some get their opinion, a rating or an outcome, and five routed in 2022 move to a handling
unit. The report of 2021 as of its end is the same before and after, and a frozen copy
verifies against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from records import items as svc
from records.deadlines import CHINA_TZ
from records.frozen_reports import FrozenReportRow, check_frozen, freeze_report
from records.item_models import ItemEvent, ItemRow, ItemSupervision, ItemTransfer, VisitKind
from records.lookup import new_code
from records.statistics import AnnualReport, annual_report, report_csv

CHANNELS = ["letter", "visit", "online", "phone", "video"]
HANDLER = 40
YEAR = (dt.date(2021, 1, 1), dt.date(2022, 1, 1))

Event = tuple[str, dt.datetime, str, dict[str, Any]]


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), CHINA_TZ).astimezone(dt.UTC)


def _concluded(day: dt.date, i: int) -> list[Event]:
    d = dt.timedelta
    events: list[Event] = [
        ("register", _at(day), "registered", {}),
        ("transfer", _at(day, 15), "transferred", {"to_unit_id": HANDLER, "from_unit_id": 1}),
        ("receive", _at(day + d(1)), "received", {}),
        ("accept", _at(day + d(2)), "accepted", {}),
        ("issue_opinion", _at(day + d(10)), "opinion_issued", {}),
    ]
    if i % 3 == 0:
        events.append(
            (
                "evaluate",
                _at(day + d(12)),
                "opinion_issued",
                {"stage": "handling", "satisfied": True},
            )
        )
    events.append(("conclude", _at(day + d(25)), "concluded", {"petitioner_waived": True}))
    return events


def histories() -> tuple[list[list[Event]], list[list[Event]]]:
    """Per item: its events up to 2021-12-31, and the events of 2022."""
    then: list[list[Event]] = []
    later: list[list[Event]] = []
    for i in range(636):
        then.append(_concluded(dt.date(2021, 1, 4) + dt.timedelta(days=i % 330), i))
        later.append([])
    for k in range(35):  # opinion issued in December, ten concluded in January 2022
        events = _concluded(dt.date(2021, 12, 1) + dt.timedelta(days=k % 12), k)[:5]
        then.append(events)
        extra: list[Event] = []
        if k < 10:
            extra.append(("conclude", _at(dt.date(2022, 1, 10 + k)), "concluded", {}))
        elif k < 14:
            data = {"stage": "handling", "satisfied": k % 2 == 0}
            extra.append(("evaluate", _at(dt.date(2022, 1, 5)), "opinion_issued", data))
        later.append(extra)
    for k in range(30):  # accepted in December; five get their opinion and outcome in 2022
        then.append(_concluded(dt.date(2021, 12, 1) + dt.timedelta(days=k % 20), k)[:4])
        extra = []
        if k < 5:
            extra.append(("issue_opinion", _at(dt.date(2022, 2, 1)), "opinion_issued", {}))
            data = {"outcome": "support", "carried_out": True, "resolved": True}
            extra.append(("set_outcome", _at(dt.date(2022, 2, 2)), "opinion_issued", data))
        later.append(extra)
    for k in range(5):  # registered at the end of 2021, routed in January 2022
        then.append([("register", _at(dt.date(2021, 12, 28 + k % 3)), "registered", {})])
        route = {"to_unit_id": HANDLER, "from_unit_id": 1}
        later.append([("transfer", _at(dt.date(2022, 1, 4)), "transferred", route)])
    assert len(then) == 706
    return then, later


def _row_values(events: Sequence[Event]) -> dict[str, Any]:
    """The derived columns as records/items.py leaves them after ``events``."""
    kinds = [e[0] for e in events]
    values: dict[str, Any] = {
        "state": events[-1][2],
        "accepted_on_time": True if "accept" in kinds else None,
        "opinion_on_time": True if "issue_opinion" in kinds else None,
        "handling_unit_id": HANDLER if "transfer" in kinds else None,
        "eval_handling": None,
        "resolved": False,
    }
    for kind, _, _, data in events:
        if kind == "evaluate":
            values["eval_handling"] = data["satisfied"]
        if kind == "set_outcome":
            values["resolved"] = data["resolved"]
    return values


def _item_id(i: int) -> str:
    return f"asof{i:028d}"


async def load_2021(sessions: async_sessionmaker[AsyncSession], then: list[list[Event]]) -> None:
    rows = []
    for i, events in enumerate(then):
        rows.append(
            {
                "id": _item_id(i),
                "lookup_code": new_code(),
                "rule_set": "2005",
                "version": 1,
                "type": ["suggestion", "complaint"][i % 2],
                "category": ["城乡建设", "劳动社保", "自然资源"][i % 3],
                "request": "r",
                "channel": CHANNELS[i % len(CHANNELS)],
                "online_platform": "国家信访平台"
                if CHANNELS[i % len(CHANNELS)] == "online"
                else None,
                "origin_level": ["municipal", None, None, "provincial"][i % 4],
                "led_by_other_unit": False,
                "registering_unit_id": 1 + i % 4,
                "subject_unit_id": [None, 30, 31][i % 3],
                "registered_at": events[0][1],
                **_row_values(events),
            }
        )
    async with sessions() as s:
        await s.execute(insert(ItemRow), rows)
        await append_events(s, [(i, events, []) for i, events in enumerate(then)])
        await s.commit()


async def append_events(
    s: AsyncSession, batches: list[tuple[int, list[Event], list[Event]]]
) -> None:
    """Append ``events`` after ``earlier`` to item ``i``, as records/items.py writes them."""
    rows = []
    transfers = []
    for i, events, earlier in batches:
        from_state = earlier[-1][2] if earlier else None
        for seq, (kind, at, to_state, data) in enumerate(events, start=len(earlier) + 1):
            rows.append(
                {
                    "item_id": _item_id(i),
                    "seq": seq,
                    "at": at,
                    "type": kind,
                    "from_state": from_state,
                    "to_state": to_state,
                    "reason": "",
                    "data": data,
                }
            )
            from_state = to_state
            if kind == "transfer":
                transfers.append(
                    {"item_id": _item_id(i), "kind": "transfer", "from_unit_id": 1,
                     "to_unit_id": HANDLER, "at": at}
                )  # fmt: skip
    if rows:
        await s.execute(insert(ItemEvent), rows)
    if transfers:
        await s.execute(insert(ItemTransfer), transfers)


async def add_2022(
    sessions: async_sessionmaker[AsyncSession],
    then: list[list[Event]],
    later: list[list[Event]],
) -> None:
    async with sessions() as s:
        await append_events(s, [(i, extra, then[i]) for i, extra in enumerate(later) if extra])
        for i, extra in enumerate(later):
            if extra:
                await s.execute(
                    update(ItemRow)
                    .where(ItemRow.id == _item_id(i))
                    .values(**_row_values(then[i] + extra))
                )
        await s.commit()


async def _report(sessions: async_sessionmaker[AsyncSession], **kw: Any) -> AnnualReport:
    async with sessions() as s:
        return await annual_report(s, start=YEAR[0], end=YEAR[1], **kw)


async def test_2021_report_as_of_its_end_is_the_same_after_2022_events(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    then, later = histories()
    await load_2021(sessions, then)
    before = await _report(sessions)
    before_handling = await _report(sessions, unit_ids=[HANDLER], by="handling")
    assert before.as_of == dt.datetime(2022, 1, 1, tzinfo=CHINA_TZ)  # end of 31 December
    assert (before.received, before.concluded, before.in_progress) == (706, 636, 70)
    assert before.completion_rate.percent == Decimal("90.08")
    assert before.mismatches == ()

    await add_2022(sessions, then, later)

    after = await _report(sessions)
    assert after == before
    assert await _report(sessions, unit_ids=[HANDLER], by="handling") == before_handling
    assert before_handling.received == 701  # the five routed in 2022 were not handled yet

    # Today's state, what the report used to count: ten more concluded.
    today = await _report(sessions, as_of=dt.datetime.now(dt.UTC))
    assert (today.concluded, today.received) == (646, 706)
    assert today.completion_rate.percent == Decimal("91.50")
    assert (
        today.on_time_completion_rate.denominator == before.on_time_completion_rate.denominator + 5
    )
    assert today.satisfaction_rate.denominator == before.satisfaction_rate.denominator + 4
    handled_today = await _report(
        sessions, unit_ids=[HANDLER], by="handling", as_of=dt.datetime.now(dt.UTC)
    )
    assert handled_today.received == 706
    resolved = sum(lf.resolved for lf in today.from_above) - sum(
        lf.resolved for lf in before.from_above
    )
    # items 671..675 resolved in 2022; 671, 672 and 675 came from above (i % 4 in 0, 3)
    assert resolved == 3


async def test_as_of_mid_year_counts_what_was_registered_and_done_by_then(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    then, later = histories()
    await load_2021(sessions, then)
    await add_2022(sessions, then, later)
    cut = dt.datetime(2021, 7, 1, tzinfo=CHINA_TZ)
    rep = await _report(sessions, as_of=cut)
    registered = [events for events in then if events[0][1] < cut]
    done = [
        events for events in registered if any(e[0] == "conclude" and e[1] < cut for e in events)
    ]
    assert rep.as_of == cut
    assert rep.received == len(registered)
    assert rep.concluded == len(done)
    assert rep.by_state.sum == rep.received
    assert rep.mismatches == ()


async def _activity(s: AsyncSession, *, recorded: dt.datetime, when: dt.date) -> None:
    """Visits on ``when`` and supervisions, all written at ``recorded``."""
    for kind, persons, leader in (
        (VisitKind.WALK_IN, 6, None),
        (VisitKind.WALK_IN, 2, None),
        (VisitKind.LEADER_RECEPTION, 3, 9),
    ):
        await svc.record_visit(
            s,
            svc.NewVisit(kind, 1, when, persons, leader_account_id=leader),
            account_id=5,
            at=recorded,
        )
    await s.execute(
        insert(ItemSupervision),
        [
            {"item_id": _item_id(650), "unit_id": 1, "account_id": 3, "reason": "督促", "at": at}
            for at in (recorded - dt.timedelta(days=2), recorded)
        ],
    )


async def test_a_report_frozen_before_the_visit_sections_checks_its_item_figures(
    item_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with item_engine.begin() as conn:
        await conn.run_sync(lambda c: FrozenReportRow.__table__.create(c))
    then, _later = histories()
    await load_2021(sessions, then)
    async with sessions() as s:
        report = await annual_report(s, start=YEAR[0], end=YEAR[1])
        old = report_csv(report)  # what freeze_report stored before the visit sections
        row = FrozenReportRow(
            start=YEAR[0],
            end=YEAR[1],
            as_of=report.as_of,
            by="registering",
            unit_ids=None,
            csv=old,
            sha256=hashlib.sha256(old.encode("utf-8")).hexdigest(),
            frozen_by=7,
        )
        s.add(row)
        await s.commit()
        await _activity(s, recorded=_at(dt.date(2021, 12, 31)), when=dt.date(2021, 12, 1))
        await s.commit()
    async with sessions() as s:
        check = await check_frozen(s, row.id)
    assert (check.intact, check.reproduced, check.differences) == (True, True, ())


async def test_frozen_2021_report_verifies_and_shows_a_backdated_change(
    item_engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with item_engine.begin() as conn:
        await conn.run_sync(lambda c: FrozenReportRow.__table__.create(c))
    then, later = histories()
    await load_2021(sessions, then)
    async with sessions() as s:
        await _activity(s, recorded=_at(dt.date(2021, 12, 31)), when=dt.date(2021, 12, 1))
        await s.commit()
    async with sessions() as s:
        frozen = await freeze_report(s, start=YEAR[0], end=YEAR[1], frozen_by=7)
        await s.commit()
    assert frozen.report.concluded == 636
    assert "totals,concluded,636" in frozen.csv
    # the visits and supervision sections: a walk-in batch of 6 (collective) and one of 2,
    # a leader's reception of 3; two supervisions of one item
    for line in (
        "visits.walk_in,batches,2",
        "visits.walk_in,persons,8",
        "visits.walk_in,collective_batches,1",
        "visits.walk_in,collective_persons,6",
        "visits.leader_reception,batches,1",
        "visits.leader_reception,persons,3",
        "visits.outreach,batches,0",
        "supervision,supervisions,2",
        "supervision,items,1",
    ):
        assert f"\n{line},," in frozen.csv, line

    await add_2022(sessions, then, later)
    async with sessions() as s:
        # 2022's visits and supervisions, and a 2021 visit only recorded in 2022
        await _activity(s, recorded=_at(dt.date(2022, 1, 5)), when=dt.date(2022, 1, 4))
        await svc.record_visit(
            s,
            svc.NewVisit(VisitKind.WALK_IN, 1, dt.date(2021, 12, 30), 4),
            account_id=5,
            at=_at(dt.date(2022, 1, 5)),
        )
        await s.commit()
    async with sessions() as s:
        check = await check_frozen(s, frozen.id)
    assert (check.intact, check.reproduced, check.differences) == (True, True, ())

    # Typed in during 2022 but dated 30 December 2021: the history as of the year end now
    # says otherwise, and the check names the figures that moved.
    i = 636 + 20  # an item still at 'opinion_issued' after 2022
    backdated = ("conclude", _at(dt.date(2021, 12, 30)), "concluded", {})
    async with sessions() as s:
        await append_events(s, [(i, [backdated], [*then[i], *later[i]])])
        await s.execute(
            update(ItemRow)
            .where(ItemRow.id == _item_id(i))
            .values(**_row_values([*then[i], *later[i], backdated]))
        )
        await s.commit()
    async with sessions() as s:
        check = await check_frozen(s, frozen.id)
    assert check.intact
    assert not check.reproduced
    assert "totals/concluded: frozen 636, now 637" in check.differences
    assert "rates/completion: frozen 90.08%, now 90.23%" in check.differences

    async with sessions() as s:
        await s.execute(
            update(FrozenReportRow)
            .where(FrozenReportRow.id == frozen.id)
            .values(csv=frozen.csv.replace("636", "646"))
        )
        await s.commit()
        assert not (await check_frozen(s, frozen.id)).intact
