"""Visits over HTTP: recorded, listed, in the statistics with year-on-year change; supervision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from records import accounts
from tests.api.items_api_support import act, register
from tests.helpers import Api

TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
THIS, LAST = TODAY.replace(month=1, day=1), TODAY.replace(year=TODAY.year - 1, month=1, day=1)


async def _visit(api: Api, headers: dict[str, str], status: int = 201, **body: Any) -> Any:
    resp = await api.client.post("/api/visits", json=body, headers=headers)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_visits_are_recorded_and_reported_with_year_on_year_change(api_sqlite: Api) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    unit = api.seed.units["QX-XFJ-JDZX"]
    leader_id = api.seed.account_ids["leader"]
    walk_ins = [(THIS, 1), (THIS, 3), (THIS, 6), (LAST, 2)]
    for day, persons in walk_ins:
        await _visit(api, reception, kind="walk_in", visited_on=day.isoformat(), persons=persons)
    v = await _visit(
        api,
        reception,
        kind="leader_reception",
        visited_on=THIS.isoformat(),
        persons=2,
        leader_account_id=leader_id,
    )
    assert (v["kind_label"], v["unit_id"], v["collective"]) == ("领导接访", unit, False)
    refused = await _visit(
        api,
        reception,
        status=422,
        kind="leader_reception",
        visited_on=THIS.isoformat(),
        persons=2,
        leader_account_id=api.seed.account_ids["reception"],
    )
    assert "not a leader" in refused["error"]["message"]
    # a sub-district's leader does not take a visit at the district's reception centre
    refused = await _visit(
        api,
        reception,
        status=422,
        kind="leader_reception",
        visited_on=THIS.isoformat(),
        persons=2,
        leader_account_id=api.seed.account_ids["dongfeng"],
    )
    assert "not to unit" in refused["error"]["message"]
    tomorrow = (TODAY + dt.timedelta(days=1)).isoformat()
    await _visit(api, reception, status=422, kind="walk_in", visited_on=tomorrow, persons=1)
    # a unit out of the caller's scope (a sub-district's officer, its neighbour's unit)
    await _visit(
        api,
        await api.login("hehua"),
        status=403,
        kind="walk_in",
        unit_id=api.seed.units["QX-DFJD"],
        visited_on=THIS.isoformat(),
        persons=1,
    )

    listed = await (await api.client.get("/api/visits", headers=reception)).json()
    assert sorted(x["persons"] for x in listed["visits"]) == [1, 2, 3, 6]

    bureau = await api.login("bureau_admin")
    resp = await api.client.get("/api/stats", params={"year": THIS.year}, headers=bureau)
    assert resp.status == 200, await resp.text()
    kinds = {k["kind"]: k for k in (await resp.json())["visits"]["kinds"]}
    walk = kinds["walk_in"]
    assert (walk["batches"], walk["persons"]) == (3, 10)
    assert (walk["collective_batches"], walk["collective_persons"]) == (1, 6)
    assert walk["previous"] == {"batches": 1, "persons": 2}
    assert walk["change_percent"] == {"batches": 200.0, "persons": 400.0}
    assert kinds["leader_reception"]["change_percent"]["batches"] is None  # none last year
    assert kinds["to_beijing"]["batches"] == 0

    resp = await api.client.get("/api/stats/report", params={"year": THIS.year}, headers=bureau)
    html = await resp.text()
    assert "来访及领导接访、下访情况（批次/人次，同比）" in html
    assert "来访接待" in html
    assert "+400.00%" in html
    assert "walk_in" not in html  # no raw keys on a Chinese page

    resp = await api.client.get(
        "/api/stats/bureau-report", params={"year": THIS.year}, headers=bureau
    )
    assert resp.status == 200, await resp.text()
    filed = await resp.text()
    assert f"{THIS.year}年度信访工作情况报告" in filed
    for heading in (
        "一、总体情况",
        "二、信访渠道",
        "三、来访情况",
        "四、领导接访和下访",
        "七、督办",
    ):
        assert heading in filed
    assert "<td>接待群众来访人次</td><td>10人次</td><td>2人次</td><td>上升400.00%</td>" in filed
    for raw in ("walk_in", "leader_reception", "concluded", "None"):
        assert raw not in filed

    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="record_visit")
    assert len([e for e in log if e.outcome == "ok"]) == 5


async def test_supervision_is_by_a_unit_above_and_platforms_are_listed(api_sqlite: Api) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    await act(api, reception, item["id"], "supervise", status=422, reason="请加快")
    leader = await api.login("leader")
    body = await act(api, leader, item["id"], "supervise", status=201, reason="请加快办理")
    assert [s["reason"] for s in body["supervisions"]] == ["请加快办理"]
    resp = await api.client.get("/api/online-platforms", headers=reception)
    platforms = (await resp.json())["platforms"]
    assert "人民网领导留言板" in platforms
    online = await register(
        api, reception, "QX-XFJ-JDZX", channel="online", online_platform=platforms[0]
    )
    assert online["online_platform"] == platforms[0]
    resp = await api.client.post(
        "/api/items",
        json={
            "registering_unit_id": api.seed.units["QX-XFJ-JDZX"],
            "type": "complaint",
            "channel": "online",
            "online_platform": "某论坛",
            "request": "请求",
            "anonymous": True,
        },
        headers=reception,
    )
    assert resp.status == 422
    year = dt.date.today().year
    resp = await api.client.get("/api/stats", params={"year": year}, headers=leader)
    assert (await resp.json())["visits"]["supervision"] == {"supervisions": 1, "items": 1}
