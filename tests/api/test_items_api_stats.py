"""Statistics, the annual report and backlog cases over HTTP."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from records import statistics
from records.base import utcnow
from records.deadlines import local_date
from tests.api.items_api_support import act, register
from tests.helpers import Api
from web.items.stats import report_json


async def test_stats_over_http_equal_the_domain_function_and_show_mismatches(
    api_sqlite: Api,
) -> None:
    api = api_sqlite
    heping = await api.login("heping_agent")
    binhe = await api.login("binhe_agent")
    made = [
        await register(api, heping, "QX-DFJD-HPSQ", channel="visit"),
        await register(api, heping, "QX-DFJD-HPSQ", channel="letter"),
        await register(
            api, heping, "QX-DFJD-HPSQ", channel="online", online_platform="人民网领导留言板"
        ),
        # an online item with no platform: the platform breakdown no longer sums up
        await register(api, heping, "QX-DFJD-HPSQ", channel="online"),
        await register(api, binhe, "QX-HHJD-BHSQ", channel="video"),
    ]
    reception = await api.login("reception")
    await act(api, reception, made[0]["id"], "not-accept", reason="重复信访")
    year = local_date(utcnow()).year  # China days, as the server counts
    leader = await api.login("leader")
    resp = await api.client.get(f"/api/stats?year={year}", headers=leader)
    assert resp.status == 200, await resp.text()
    whole = await resp.json()
    async with api.seed.store.transaction() as tx:
        domain = await statistics.annual_report(
            tx, start=dt.date(year, 1, 1), end=dt.date(year + 1, 1, 1)
        )
    expected = report_json(domain)
    extra = ("unit_id", "by", "sessions", "visits", "links")
    assert {k: v for k, v in whole.items() if k not in extra} == expected
    assert whole["received"] == len(made)
    assert whole["by_channel"]["counts"] == {"online": 2, "letter": 1, "video": 1, "visit": 1}
    assert whole["closed_otherwise"] == 1
    assert whole["mismatches"] == ["online platform breakdown sums to 1, online total is 2"]
    assert whole["by_online_platform"]["mismatch"] == whole["mismatches"][0]

    # the sub-district's own subtree: only its four items
    dongfeng = await api.login("dongfeng")
    sub = await (await api.client.get(f"/api/stats?year={year}", headers=dongfeng)).json()
    assert sub["received"] == 4
    resp = await api.client.get(
        f"/api/stats?year={year}&unit_id={api.seed.units['QX-HHJD']}", headers=dongfeng
    )
    assert resp.status == 403
    # agents have no statistics role
    resp = await api.client.get(f"/api/stats?year={year}", headers=heping)
    assert resp.status == 403

    resp = await api.client.get(f"/api/stats/csv?year={year}", headers=leader)
    assert resp.content_type == "text/csv"
    text = (await resp.read()).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert ["totals", "received", "5", "", ""] in rows
    assert ["mismatch", "", whole["mismatches"][0], "", ""] in rows

    resp = await api.client.get(f"/api/stats/report?year={year}", headers=leader)
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert f"{year}年度信访工作报告" in page
    assert 'class="mismatch"' in page
    # the printed report names the inconsistency in Chinese, never in the API's words or keys
    assert whole["mismatches"][0] not in page
    assert "各项之和为" in page
    body = page.split("<body>", 1)[1]
    # what a reader sees: the text, not the links' addresses (/items?figure=received...)
    shown = re.sub(r"<[^>]+>", "", body)
    assert not re.search(r"\b(received|online|housing|labour|in_progress)\b", shown), shown
    assert "/items?figure=received" in body
    assert "视频信访" in page
    assert "全区" in page


async def test_backlog_case_progress_and_missing_months(api_sqlite: Api) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    item = await register(api, reception, "QX-DFJD-HPSQ")
    units = [api.seed.units["QX-DFJD"], api.seed.units["QX-ZJJ"]]
    five_ones = {
        "leader_account_id": api.seed.account_ids["dongfeng"],
        "team": "东风街道专班",
        "resolution_plan": "协调补贴资金",
        "stability_plan": "每周走访",
        "ledger": "台账2024-01",
        "unit_ids": units,
    }
    resp = await api.client.post(
        f"/api/items/{item['id']}/backlog", json={**five_ones, "team": " "}, headers=reception
    )
    assert resp.status == 422  # every one of the five ones is needed
    resp = await api.client.post(
        f"/api/items/{item['id']}/backlog",
        json={**five_ones, "leader_account_id": api.seed.account_ids["housing"]},
        headers=reception,
    )
    assert resp.status == 422  # the responsible leader must be a leader
    resp = await api.client.post(
        f"/api/items/{item['id']}/backlog", json=five_ones, headers=reception
    )
    assert resp.status == 201, await resp.text()
    case = await resp.json()
    resp = await api.client.post(
        f"/api/items/{item['id']}/backlog", json=five_ones, headers=reception
    )
    assert resp.status == 409

    this_month = local_date(utcnow()).replace(day=1)
    dongfeng = await api.login("dongfeng")
    resp = await api.client.post(
        f"/api/backlog/{case['id']}/progress",
        json={"unit_id": units[0], "month": f"{this_month:%Y-%m}", "text": "已协调资金到位一半"},
        headers=dongfeng,
    )
    assert resp.status == 201, await resp.text()
    # the sub-district may not write the housing bureau's entry
    resp = await api.client.post(
        f"/api/backlog/{case['id']}/progress",
        json={"unit_id": units[1], "month": f"{this_month:%Y-%m}", "text": "x"},
        headers=dongfeng,
    )
    assert resp.status == 403
    next_month = (this_month + dt.timedelta(days=32)).replace(day=1)
    resp = await api.client.get(
        f"/api/backlog/{case['id']}/missing?through={next_month + dt.timedelta(days=40):%Y-%m-%d}",
        headers=dongfeng,
    )
    missing = (await resp.json())["missing_months"]
    assert missing[str(units[0])] == [f"{next_month:%Y-%m}"]
    assert missing[str(units[1])] == [f"{this_month:%Y-%m}", f"{next_month:%Y-%m}"]

    detail = await (await api.client.get(f"/api/backlog/{case['id']}", headers=dongfeng)).json()
    assert [e["text"] for e in detail["entries"]] == ["已协调资金到位一半"]
    assert detail["lookup_code"] == item["lookup_code"]
    mine = await (await api.client.get("/api/backlog?mine=true", headers=dongfeng)).json()
    assert [c["id"] for c in mine["cases"]] == [case["id"]]
    hehua = await api.login("hehua")
    assert (await (await api.client.get("/api/backlog", headers=hehua)).json())["cases"] == []
    assert (await api.client.get(f"/api/backlog/{case['id']}", headers=hehua)).status == 403
    resp = await api.client.get("/api/backlog/mine", headers=dongfeng)
    page = await resp.text()
    assert resp.content_type == "text/html"
    assert 'name="viewport"' in page
    assert item["lookup_code"] in page
    assert "东风街道专班" in page
