"""The item list's filters (category, handler, deadline), its order, and its CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy import update

from records import accounts
from records.item_models import ItemRow
from tests.api.items_api_support import PHONE, act, register
from tests.helpers import Api


async def _codes(api: Api, who: str, query: str) -> list[str]:
    headers = await api.login(who)
    resp = await api.client.get(f"/api/items?{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return [i["lookup_code"] for i in (await resp.json())["items"]]


async def _due(api: Api, item_id: str, day: dt.date | None) -> None:
    async with api.seed.store.transaction() as tx:
        await tx.execute(update(ItemRow).where(ItemRow.id == item_id).values(due_on=day))


async def test_filters_and_order(api: Api) -> None:
    agent = await api.login("heping_agent")
    a = await register(api, agent, "QX-DFJD-HPSQ", category="housing")
    b = await register(api, agent, "QX-DFJD-HPSQ", category="land")
    c = await register(api, agent, "QX-DFJD-HPSQ", category="land")
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    await _due(api, a["id"], today - dt.timedelta(days=2))  # overdue
    await _due(api, b["id"], today + dt.timedelta(days=10))
    await _due(api, c["id"], None)
    codes = {x["id"]: x["lookup_code"] for x in (a, b, c)}

    assert await _codes(api, "dongfeng", "category=land") == [codes[c["id"]], codes[b["id"]]]
    assert await _codes(api, "dongfeng", "overdue=true") == [codes[a["id"]]]
    before = (today + dt.timedelta(days=30)).isoformat()
    assert set(await _codes(api, "dongfeng", f"due_before={before}")) == {
        codes[a["id"]],
        codes[b["id"]],
    }
    # by deadline, either way; an item without one comes last both ways
    assert await _codes(api, "dongfeng", "sort=due&order=asc") == [
        codes[a["id"]],
        codes[b["id"]],
        codes[c["id"]],
    ]
    assert await _codes(api, "dongfeng", "sort=due&order=desc") == [
        codes[b["id"]],
        codes[a["id"]],
        codes[c["id"]],
    ]
    assert await _codes(api, "dongfeng", "sort=received&order=asc") == [
        codes[a["id"]],
        codes[b["id"]],
        codes[c["id"]],
    ]
    # by state in lifecycle order: the accepted one after the registered ones
    dongfeng = await api.login("dongfeng")
    await act(api, dongfeng, a["id"], "assign", to_unit_id=api.seed.units["QX-DFJD-HPSQ"])
    assert (await _codes(api, "dongfeng", "sort=state&order=asc"))[-1] == codes[a["id"]]
    assert (await _codes(api, "dongfeng", "sort=state&order=desc"))[0] == codes[a["id"]]

    # handler: the items an account is named on
    resp = await api.client.put(
        f"/api/items/{b['id']}/handlers/{api.seed.account_ids['dongfeng']}",
        json={},
        headers=dongfeng,
    )
    assert resp.status == 200, await resp.text()
    assert await _codes(api, "dongfeng", "handler=me") == [codes[b["id"]]]
    assert await _codes(api, "leader", f"handler={api.seed.account_ids['dongfeng']}") == [
        codes[b["id"]]
    ]

    for bad in ("sort=name", "order=up", "overdue=yes", "handler=x", "due_before=tomorrow"):
        resp = await api.client.get(f"/api/items?{bad}", headers=dongfeng)
        assert resp.status == 422, bad


async def test_the_csv_export(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = await api.login("heping_agent")
    a = await register(api, agent, "QX-DFJD-HPSQ", category="housing")
    b = await register(api, agent, "QX-DFJD-HPSQ", category="land")
    dongfeng = await api.login("dongfeng")
    resp = await api.client.get("/api/items.csv?category=housing", headers=dongfeng)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    raw = await resp.read()
    assert raw.startswith("\ufeff".encode())  # the BOM: a spreadsheet reads the Chinese
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["查询码", "状态", "渠道"]
    assert [r[0] for r in rows[1:]] == [a["lookup_code"]]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["状态"] == "已登记"
    assert row["渠道"] == "来访"
    assert row["类别"] == "房屋与拆迁"
    assert row["登记单位"] == "和平社区"
    # identities masked, as in every list
    assert row["信访人"] == "张*"
    assert PHONE not in raw.decode("utf-8-sig")
    assert row["联系电话"].endswith(PHONE[-4:])
    assert "110101195001011234" not in raw.decode("utf-8-sig")
    # audited with the query
    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="export_items")
    assert [e.actor for e in log] == [f"account:{api.seed.account_ids['dongfeng']}"]
    # scope: a sub-district outside sees nothing of it
    resp = await api.client.get("/api/items.csv", headers=await api.login("hehua"))
    assert len(list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))) == 1
    # the row limit, said in a last line
    monkeypatch.setattr("web.items.reading.CSV_ROWS", 1)
    resp = await api.client.get("/api/items.csv", headers=dongfeng)
    rows = list(csv.reader(io.StringIO((await resp.read()).decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:2]] == [b["lookup_code"]]
    assert "仅导出前 1 条" in rows[2][0]


async def test_handlers_to_name(api: Api) -> None:
    dongfeng = await api.login("dongfeng")
    resp = await api.client.get("/api/handlers", headers=dongfeng)
    assert resp.status == 200, await resp.text()
    names = {h["name"] for h in (await resp.json())["handlers"]}
    assert {"Dongfeng", "Heping_Agent"} <= names
    assert "Housing" not in names  # outside the street's scope ...
    resp = await api.client.get(
        f"/api/handlers?unit_id={api.seed.units['QX-ZJJ']}", headers=dongfeng
    )
    # ... but named when the receiving unit is asked for (a transfer names its handler)
    assert [h["name"] for h in (await resp.json())["handlers"]] == ["Housing"]


async def test_the_navigation_counts(api: Api) -> None:
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    await act(api, reception, item["id"], "assign", to_unit_id=api.seed.units["QX-ZJJ"])
    housing = await api.login("housing")
    resp = await api.client.get("/api/items/counts", headers=housing)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "overdue": 0,
        "due_soon": 0,
        "to_acknowledge": 1,
        "backlog_missing": 0,
    }
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    await _due(api, item["id"], today - dt.timedelta(days=1))
    counted = await (await api.client.get("/api/items/counts", headers=housing)).json()
    assert (counted["overdue"], counted["due_soon"]) == (1, 0)
    await _due(api, item["id"], today + dt.timedelta(days=3))
    counted = await (await api.client.get("/api/items/counts", headers=housing)).json()
    assert (counted["overdue"], counted["due_soon"]) == (0, 1)
    await act(api, housing, item["id"], "acknowledge")
    counted = await (await api.client.get("/api/items/counts", headers=housing)).json()
    assert counted["to_acknowledge"] == 0
    # the reception centre sent it away: nothing waits for its own acknowledgement
    assert (await (await api.client.get("/api/items/counts", headers=reception)).json())[
        "to_acknowledge"
    ] == 0
