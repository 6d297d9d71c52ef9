"""What the lifecycle tests share: dates in China time, a new item, walking events on a database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from records import items as svc
from records.calendar import HolidayCalendar
from records.item_models import Channel, ItemType
from records.keyring import DataKeyring, new_key_entry
from records.lifecycle import (
    EventType,
    HistoryEvent,
    ItemState,
    Timeline,
    advance,
    replay,
)

S, E = ItemState, EventType
#: seals identity numbers in these tests (a fresh key per run)
KEYRING = DataKeyring.parse(new_key_entry("test"))
CST = dt.timezone(dt.timedelta(hours=8))


def at(y: int, m: int, d: int, h: int = 10) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=CST)


def new_item(**kw: object) -> svc.NewItem:
    base: dict[str, object] = {
        "registering_unit_id": 1,
        "type": ItemType.COMPLAINT,
        "channel": Channel.VIDEO,
        "request": "要求解决小区供暖不热的问题",
        "category": "城乡建设",
        "petitioners": [
            svc.NewPetitioner(name="张三", id_number="110101195001011234", phone="13800001234")
        ],
        "subject_unit_id": 30,
    }
    base.update(kw)
    return svc.NewItem(**base)  # type: ignore[arg-type]


async def walk(
    s: AsyncSession,
    cal: HolidayCalendar,
    item_id: str,
    steps: list[tuple[EventType, dt.datetime, dict[str, object]]],
) -> svc.Item:
    item = await svc.get_item(s, item_id)
    for event, when, data in steps:
        if event is E.TRANSFER:
            item = await svc.transfer(s, cal, item_id, 20, account_id=5, at=when)
        elif event is E.ASSIGN:
            item = await svc.assign(
                s, cal, item_id, 21, due=dt.date(2024, 6, 30), account_id=5, at=when
            )
        elif event is E.RECEIVE:
            item = await svc.acknowledge(s, cal, item_id, account_id=6, at=when)
        elif event is E.RETURN:
            item = await svc.object_to(
                s, cal, item_id, reason="不属于本单位职权", account_id=6, at=when
            )
        elif event is E.EXTEND:
            days = data["days"]
            assert isinstance(days, int)
            item = await svc.extend(
                s, cal, item_id, days=days, approved_by=9, reason="情况复杂", at=when
            )
        elif event is E.STOP_CLOCK:
            item = await svc.stop_clock(s, cal, item_id, reason="听证", account_id=6, at=when)
        elif event is E.RESUME_CLOCK:
            item = await svc.resume_clock(s, cal, item_id, account_id=6, at=when)
        else:
            item = await svc.apply_event(s, cal, item_id, event, account_id=6, at=when, data=data)
    await s.commit()
    return item


def then(history: list[HistoryEvent], event: HistoryEvent, calendar: HolidayCalendar) -> Timeline:
    """``event`` appended as a new one to the replayed ``history`` (all rules apply)."""
    return advance(replay(history, calendar), event, calendar)
