"""Importing a year's notice: stored for every hub, checked, and open deadlines recomputed.

Items run into 2027 under the rules (provisional); the (made-up) 2027 notice moves the
opinion due of one of them, which gets a note in its history; the other keeps its date.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import records.items as svc
from config.errors import ConfigError
from records.calendar import HolidayCalendar, load_calendar
from records.lifecycle import EventType
from records.notices import (
    CalendarNoticeRow,
    import_notice,
    imported_notices,
    recompute_open_deadlines,
)
from tests.records.lifecycle_support import KEYRING, at, new_item

NOTICE_2027 = Path(__file__).resolve().parent / "notices" / "CN-2027.toml"


@pytest.fixture
async def notice_sessions(item_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    async with item_engine.begin() as conn:
        await conn.run_sync(lambda c: CalendarNoticeRow.__table__.create(c))
    return async_sessionmaker(item_engine, expire_on_commit=False)


async def _accepted_on(s: AsyncSession, calendar: HolidayCalendar, day: dt.date) -> svc.Item:
    y, m, d = day.year, day.month, day.day
    item = await svc.register_item(
        s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(y, m, d, 9)
    )
    await svc.transfer(s, calendar, item.id, 40, account_id=5, at=at(y, m, d, 10))
    await svc.acknowledge(s, calendar, item.id, account_id=6, at=at(y, m, d, 11))
    return await svc.accept(s, calendar, item.id, account_id=6, at=at(y, m, d, 12))


async def test_import_recomputes_open_deadlines_and_notes_it(
    notice_sessions: async_sessionmaker[AsyncSession], calendar: HolidayCalendar
) -> None:
    async with notice_sessions() as s:
        moved = await _accepted_on(s, calendar, dt.date(2026, 12, 8))
        kept = await svc.register_item(
            s, calendar, new_item(), keyring=KEYRING, account_id=5, at=at(2026, 12, 17)
        )
        await s.commit()
    # by the rules: Spring Festival 2027 from its eve, Sat/Sun made up on 9, 10 Feb
    assert moved.due_on == dt.date(2027, 2, 11)
    assert kept.due_on == dt.date(2027, 1, 4)  # not New Year's Day
    # both computed by the rules, so provisional (what the API and the apps show)
    assert calendar.is_provisional(moved.due_on)
    assert calendar.is_provisional(kept.due_on)

    async with notice_sessions() as s:
        info = await import_notice(
            s, 2027, "CN-2027.toml", NOTICE_2027.read_text("utf-8"), imported_by="cli:admin"
        )
        new_calendar = load_calendar(notices=await imported_notices(s))
        assert new_calendar.covers(2027)
        changes = await recompute_open_deadlines(s, new_calendar, year=2027, at=at(2026, 12, 20))
        await s.commit()
    assert info.year == 2027
    assert len(info.sha256) == 64
    assert [(c.item_id, c.before, c.after) for c in changes] == [
        (moved.id, dt.date(2027, 2, 11), dt.date(2027, 2, 15))
    ]
    async with notice_sessions() as s:
        item = await svc.get_item(s, moved.id)
        history = await svc.item_history(s, moved.id)
        unchanged = await svc.get_item(s, kept.id)
        again = await recompute_open_deadlines(s, new_calendar, year=2027)
    assert item.due_on == dt.date(2027, 2, 15)
    assert unchanged.due_on == dt.date(2027, 1, 4)
    # now by the official notice: neither date is provisional any more
    assert not new_calendar.is_provisional(item.due_on)
    assert not new_calendar.is_provisional(unchanged.due_on)
    note = history[-1]
    assert note.type is EventType.NOTE
    assert note.data["due_before"] == "2027-02-11"
    assert note.data["due_after"] == "2027-02-15"
    assert "holiday notice for 2027" in note.reason
    assert again == []  # idempotent


async def test_a_malformed_or_contradicting_notice_is_refused(
    notice_sessions: async_sessionmaker[AsyncSession],
) -> None:
    text = NOTICE_2027.read_text("utf-8")
    async with notice_sessions() as s:
        with pytest.raises(ConfigError, match=r"imported CN-2027.toml: key 'year' must be 2028"):
            await import_notice(s, 2028, "CN-2027.toml", text, imported_by="cli")
        with pytest.raises(ConfigError, match="not valid TOML"):
            await import_notice(s, 2027, "CN-2027.toml", text + "[[", imported_by="cli")
        assert await imported_notices(s) == []
