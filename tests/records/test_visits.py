"""Visits in batches and person-times, supervision, the repeat flag, the online platforms."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from config.errors import NotFound, ValidationError
from records import items as svc
from records.calendar import HolidayCalendar
from records.item_models import Channel, VisitKind
from records.statistics import previous_period, year_on_year
from tests.records.lifecycle_support import KEYRING, at, new_item

K = VisitKind
D = dt.date


def visit(kind: VisitKind, day: dt.date, persons: int, **kw: object) -> svc.NewVisit:
    if kind in svc.LEADER_KINDS:
        kw.setdefault("leader_account_id", 99)
    if kind is K.OUTREACH:
        kw.setdefault("place", "东风街道和平社区")
    return svc.NewVisit(
        kind=kind, unit_id=kw.pop("unit_id", 20), visited_on=day, persons=persons, **kw
    )  # type: ignore[arg-type]


async def test_visits_are_counted_in_batches_and_person_times_as_of_a_date(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        recorded = at(2024, 12, 31, 18)
        for kind, day, persons in (
            (K.WALK_IN, D(2024, 3, 1), 1),
            (K.WALK_IN, D(2024, 3, 2), 3),
            (K.WALK_IN, D(2024, 5, 6), 5),  # collective: 5 or more
            (K.WALK_IN, D(2024, 6, 7), 12),  # collective
            (K.LEADER_RECEPTION, D(2024, 4, 1), 2),
            (K.OUTREACH, D(2024, 9, 9), 6),
            (K.TO_CITY, D(2024, 10, 10), 1),
            (K.TO_BEIJING, D(2024, 11, 11), 2),
            (K.WALK_IN, D(2023, 12, 31), 4),  # the year before
            (K.WALK_IN, D(2024, 3, 3), 2),  # another unit
        ):
            unit = 30 if (day, persons) == (D(2024, 3, 3), 2) else 20
            v = await svc.record_visit(
                s, visit(kind, day, persons, unit_id=unit), account_id=5, at=recorded
            )
            assert v.collective is (persons >= 5)
        # recorded in January 2025 for a December 2024 visit: not in the report as filed
        late = at(2025, 1, 5)
        await svc.record_visit(s, visit(K.WALK_IN, D(2024, 12, 30), 2), account_id=5, at=late)
        await s.commit()

        year = {"start": D(2024, 1, 1), "end": D(2025, 1, 1), "unit_ids": [20]}
        filed = await svc.visit_figures(s, **year, as_of=at(2025, 1, 1, 0))  # type: ignore[arg-type]
        walk = filed.of(K.WALK_IN)
        assert (walk.batches, walk.persons) == (4, 21)
        assert (walk.collective_batches, walk.collective_persons) == (2, 17)
        assert (filed.of(K.LEADER_RECEPTION).batches, filed.of(K.LEADER_RECEPTION).persons) == (
            1,
            2,
        )
        assert filed.of(K.OUTREACH).collective_batches == 1
        assert filed.of(K.TO_CITY).persons == 1
        assert filed.of(K.TO_BEIJING).persons == 2
        assert filed.of(K.TO_PROVINCE).batches == 0
        now = await svc.visit_figures(s, **year)  # type: ignore[arg-type]
        assert (now.of(K.WALK_IN).batches, now.of(K.WALK_IN).persons) == (5, 23)
        everyone = await svc.visit_figures(s, start=D(2024, 1, 1), end=D(2025, 1, 1))
        assert everyone.of(K.WALK_IN).batches == 6
        listed = await svc.list_visits(
            s, unit_ids=[20], start=D(2024, 1, 1), end=D(2025, 1, 1), kinds=[K.WALK_IN]
        )
        assert [v.visited_on for v in listed][:2] == [D(2024, 12, 30), D(2024, 6, 7)]


async def test_visit_rules(sessions: async_sessionmaker[AsyncSession]) -> None:
    today = D(2024, 6, 1)
    async with sessions() as s:
        for bad, why in (
            (visit(K.WALK_IN, D(2024, 6, 2), 1), "recorded after it happened"),
            (visit(K.WALK_IN, today, 0), "1..10000 persons"),
            (visit(K.LEADER_RECEPTION, today, 1, leader_account_id=None), "names the leader"),
            (visit(K.WALK_IN, today, 1, leader_account_id=7), "'leader_reception'"),
            (visit(K.OUTREACH, today, 1, place=" "), "where the leader went"),
        ):
            with pytest.raises(ValidationError, match=why):
                await svc.record_visit(s, bad, account_id=5, today=today)
        with pytest.raises(NotFound):
            await svc.record_visit(
                s, visit(K.WALK_IN, today, 1, item_id="0" * 32), account_id=5, today=today
            )


async def test_supervision_is_counted_and_needs_a_reason(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        item = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2024, 3, 1)
        )
        with pytest.raises(ValidationError, match="reason"):
            await svc.supervise(s, item.id, unit_id=1, account_id=2, reason=" ")
        with pytest.raises(ValidationError, match="in the past"):
            await svc.supervise(
                s,
                item.id,
                unit_id=1,
                account_id=2,
                reason="督促",
                due_on=D(2024, 3, 1),
                at=at(2024, 3, 5),
            )
        for day in (5, 20):
            await svc.supervise(
                s, item.id, unit_id=1, account_id=2, reason="请加快办理", at=at(2024, 3, day)
            )
        assert [x.reason for x in await svc.list_supervisions(s, item.id)] == ["请加快办理"] * 2
        start, end = at(2024, 1, 1, 0), at(2025, 1, 1, 0)
        assert await svc.supervision_count(s, start=start, end=end) == (2, 1)
        assert await svc.supervision_count(s, start=start, end=end, unit_ids=[7]) == (0, 0)


async def test_repeat_flag_and_online_platforms(
    sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with sessions() as s:
        first = await svc.register_item(s, calendar, new_item(), keyring=KEYRING, account_id=5)
        assert first.repeat is False
        again = await svc.register_item(
            s, calendar, new_item(duplicate_of_id=first.id), keyring=KEYRING, account_id=5
        )
        assert again.repeat is True  # a duplicate of an earlier item is a repeat petition
        flagged = await svc.register_item(
            s, calendar, new_item(repeat=True), keyring=KEYRING, account_id=5
        )
        assert flagged.repeat is True
        online = new_item(channel=Channel.ONLINE, online_platform="人民网领导留言板")
        ok = await svc.register_item(s, calendar, online, keyring=KEYRING, account_id=5)
        assert ok.online_platform == "人民网领导留言板"
        with pytest.raises(ValidationError, match="not one of: 人民网领导留言板、"):
            await svc.register_item(
                s,
                calendar,
                new_item(channel=Channel.ONLINE, online_platform="国家信访平台"),
                keyring=KEYRING,
                account_id=5,
            )


def test_year_on_year_and_the_period_before() -> None:
    assert year_on_year(21, 16) == Decimal("31.25")
    assert year_on_year(2, 3) == Decimal("-33.33")
    assert year_on_year(1, 3) == Decimal("-66.67")  # half-up away from zero
    assert year_on_year(5, 0) is None
    assert year_on_year(0, 4) == Decimal("-100.00")
    assert previous_period(D(2024, 1, 1), D(2025, 1, 1)) == (D(2023, 1, 1), D(2024, 1, 1))
    assert previous_period(D(2024, 2, 29), D(2024, 3, 1)) == (D(2023, 2, 28), D(2023, 3, 1))
