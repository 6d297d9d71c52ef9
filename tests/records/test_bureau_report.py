"""The report a bureau files: a year of records, every section against hand-computed figures."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from records import items as svc
from records.bureau_report import BureauReport, bureau_report
from records.item_models import BacklogCase, ItemRow, ItemSupervision, VisitKind
from records.lookup import new_code

CST = dt.timezone(dt.timedelta(hours=8))
K = VisitKind


def at(y: int, m: int, d: int, h: int = 10) -> dt.datetime:
    return dt.datetime(y, m, d, h, tzinfo=CST)


def item(n: int, day: dt.datetime, channel: str, state: str, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": f"{n:032d}",
        "lookup_code": new_code(),
        "rule_set": "2022",
        "state": state,
        "version": 1,
        "type": "complaint",
        "category": "城乡建设",
        "request": "r",
        "facts": "",
        "reasons": "",
        "channel": channel,
        "online_platform": None,
        "origin_level": None,
        "led_by_other_unit": False,
        "repeat": False,
        "urgent": False,
        "major": False,
        "confidential": False,
        "anonymous": False,
        "is_group": False,
        "registering_unit_id": 20,
        "registered_at": day,
        "resolved": False,
    }
    row.update(kw)
    return row


#: 2024: 12 items (7 concluded, 3 in progress of which 1 part-concluded and 1 reported awaiting
#: confirmation, 2 closed otherwise); 2023: 5, all concluded
ITEMS = [
    item(1, at(2024, 1, 1, 0), "letter", "concluded", origin_level="central", resolved=True),
    item(2, at(2024, 2, 2), "letter", "concluded", origin_level="central", led_by_other_unit=True),
    item(3, at(2024, 3, 3), "letter", "part_concluded", origin_level="municipal"),
    item(4, at(2024, 4, 4), "letter", "not_accepted"),
    item(5, at(2024, 5, 5), "visit", "concluded"),
    item(6, at(2024, 6, 6), "visit", "concluded"),
    item(7, at(2024, 7, 7), "visit", "registered"),
    item(8, at(2024, 8, 8), "online", "concluded", online_platform="人民网领导留言板"),
    item(9, at(2024, 9, 9), "online", "concluded", online_platform="人民网领导留言板"),
    item(10, at(2024, 10, 10), "online", "reported"),  # no platform: the breakdown is short
    item(11, at(2024, 11, 11), "phone", "concluded"),
    item(12, at(2024, 12, 31, 23), "phone", "diverted"),
    *(item(20 + i, at(2023, 3, 1 + i), "letter", "concluded") for i in range(2)),
    *(item(30 + i, at(2023, 4, 1 + i), "visit", "concluded") for i in range(3)),
]
VISITS = [
    (K.WALK_IN, dt.date(2024, 1, 8), 1),
    (K.WALK_IN, dt.date(2024, 2, 8), 3),
    (K.WALK_IN, dt.date(2024, 3, 8), 6),
    (K.WALK_IN, dt.date(2024, 4, 8), 8),
    (K.LEADER_RECEPTION, dt.date(2024, 5, 8), 2),
    (K.LEADER_RECEPTION, dt.date(2024, 6, 8), 5),
    (K.OUTREACH, dt.date(2024, 7, 8), 3),
    (K.TO_CITY, dt.date(2024, 8, 8), 1),
    (K.TO_BEIJING, dt.date(2024, 9, 8), 2),
    (K.WALK_IN, dt.date(2023, 1, 8), 2),
    (K.WALK_IN, dt.date(2023, 2, 8), 2),
    (K.LEADER_RECEPTION, dt.date(2023, 3, 8), 1),
]


def case(item_n: int, flagged: dt.datetime, closed: dt.datetime | None) -> dict[str, Any]:
    return {
        "item_id": f"{item_n:032d}",
        "leader_account_id": 9,
        "team": "专班",
        "resolution_plan": "方案",
        "stability_plan": "稳控",
        "ledger": "台账",
        "flagged_at": flagged,
        "closed_at": closed,
    }


async def _load(s: AsyncSession) -> None:
    await s.execute(insert(ItemRow), ITEMS)
    for kind, day, persons in VISITS:
        leader = 9 if kind in svc.LEADER_KINDS else None
        place = "和平社区" if kind is K.OUTREACH else None
        await svc.record_visit(
            s,
            svc.NewVisit(kind, 20, day, persons, leader_account_id=leader, place=place),
            account_id=5,
            at=at(2024, 12, 31, 12),
        )
    # recorded after the report's as_of: not in it
    await svc.record_visit(
        s, svc.NewVisit(K.WALK_IN, 20, dt.date(2024, 12, 30), 9), account_id=5, at=at(2025, 1, 3)
    )
    await s.execute(
        insert(BacklogCase),
        [
            case(1, at(2024, 2, 1), at(2024, 10, 1)),  # resolved, closed
            case(7, at(2024, 5, 1), None),
            case(20, at(2023, 6, 1), None),
            case(12, at(2024, 4, 1), at(2024, 11, 1)),  # closed without being resolved
        ],
    )
    await s.execute(
        insert(ItemSupervision),
        [
            {"item_id": f"{n:032d}", "unit_id": 20, "account_id": 3, "reason": "督促", "at": t}
            for n, t in (
                (3, at(2024, 5, 5)),
                (3, at(2024, 6, 6)),
                (7, at(2024, 7, 7)),
                (20, at(2023, 5, 5)),
                (7, at(2025, 1, 2)),  # after as_of
            )
        ],
    )
    await s.commit()


def rows(report: BureauReport, heading: str) -> dict[str, tuple[str, str | None, str | None]]:
    return {r.label: (r.value, r.previous, r.change) for r in report.section(heading).rows}


async def test_every_section_of_a_year_matches_the_hand_computed_figures(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        await _load(s)
        report = await bureau_report(
            s, start=dt.date(2024, 1, 1), end=dt.date(2025, 1, 1), unit_ids=[20]
        )
    assert report.title == "2024年度信访工作情况报告"
    assert report.as_of == at(2025, 1, 1, 0)
    assert [s.heading for s in report.sections] == [
        "一、总体情况",
        "二、信访渠道",
        "三、来访情况",
        "四、领导接访和下访",
        "五、上级交办事项",
        "六、信访积案",
        "七、督办",
    ]
    up0 = "上年同期为0"
    assert rows(report, "一、") == {
        "受理信访事项": ("12件", "5件", "上升140.00%"),
        "已办结": ("7件", "5件", "上升40.00%"),
        "正在办理": ("3件", "0件", up0),
        "其中部分办结": ("1件", "0件", up0),
        "其中已上报待确认": ("1件", "0件", up0),
        "其他方式结束（导入法定途径、不予受理）": ("2件", "0件", up0),
        "办结率": ("58.33%", "100.00%", "降低41.67个百分点"),  # 7/12, 5/5
        "按期受理率": ("—", "—", None),
        "按期办结率": ("—", "—", None),
        "满意率": ("—", "—", None),
        "转送": ("0件", "0件", "持平"),
        "交办": ("0件", "0件", "持平"),
    }
    assert rows(report, "二、") == {
        "来信": ("4件", "2件", "上升100.00%"),
        "来访": ("3件", "3件", "持平"),
        "网上信访": ("3件", "0件", up0),
        "电话": ("2件", "0件", up0),
        "其中人民网领导留言板": ("2件", "0件", up0),
    }
    assert rows(report, "三、") == {
        "接待群众来访批次": ("4批", "2批", "上升100.00%"),
        "接待群众来访人次": ("18人次", "4人次", "上升350.00%"),  # 1+3+6+8, 2+2
        "其中集体访批次": ("2批", "0批", up0),  # 6 and 8 persons
        "其中集体访人次": ("14人次", "0人次", up0),
        "赴市上访批次": ("1批", "0批", up0),
        "赴市上访人次": ("1人次", "0人次", up0),
        "赴省上访批次": ("0批", "0批", "持平"),
        "赴省上访人次": ("0人次", "0人次", "持平"),
        "进京上访批次": ("1批", "0批", up0),
        "进京上访人次": ("2人次", "0人次", up0),
    }
    assert rows(report, "四、") == {
        "领导接访批次": ("2批", "1批", "上升100.00%"),
        "领导接访人次": ("7人次", "1人次", "上升600.00%"),
        "领导下访批次": ("1批", "0批", up0),
        "领导下访人次": ("3人次", "0人次", up0),
    }
    above = rows(report, "五、")
    assert above["中央交办"][0] == "2件"
    assert above["中央交办其中他单位牵头（不计入化解率）"][0] == "1件"
    assert above["中央交办已化解"][0] == "1件"
    assert above["中央交办化解率"][0] == "100.00%"  # 1 / (2 - 1)
    assert above["市级交办"][0] == "1件"
    assert above["市级交办已化解"][0] == "0件"
    assert above["市级交办化解率"][0] == "0.00%"
    assert rows(report, "六、") == {
        "积案总数": ("4件", None, None),
        "其中本期新增": ("3件", None, None),
        "已销号": ("2件", None, None),
        "未销号": ("2件", None, None),
        "已化解": ("1件", None, None),
    }
    assert rows(report, "七、") == {
        "督办次数": ("3次", "1次", "上升200.00%"),
        "督办事项": ("2件", "1件", "上升100.00%"),
    }
    assert report.inconsistencies == (
        "网上信访各平台件数之和为2件，与网上信访总数3件不符（相差1件）",
        "已销号积案2件，多于已化解积案1件（未化解即销号）",
    )
