"""Backlog cases over HTTP: plan due dates, and per unit the overdue plans and missing months."""

from __future__ import annotations

import datetime as dt
from typing import Any

from records import accounts
from records.base import utcnow
from records.deadlines import local_date
from tests.api.items_api_support import act, register
from tests.helpers import Api


async def _flag(api: Api, headers: dict[str, str], item_id: str, **over: Any) -> dict[str, Any]:
    body = {
        "team": "专班",
        "resolution_plan": "化解方案",
        "stability_plan": "稳控措施",
        "ledger": "工作台账",
        **over,
    }
    resp = await api.client.post(f"/api/items/{item_id}/backlog", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    case: dict[str, Any] = await resp.json()
    return case


async def _attention(api: Api, who: str, query: str = "") -> dict[str, Any]:
    resp = await api.client.get(f"/api/backlog/attention{query}", headers=await api.login(who))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_items_api_backlog_overdue_plans_and_missing_months_per_unit(api: Api) -> None:
    units = api.seed.units
    reception = await api.login("reception")
    today = local_date(utcnow())
    this_month = today.replace(day=1)
    next_month = (this_month + dt.timedelta(days=32)).replace(day=1)
    later = next_month + dt.timedelta(days=40)  # two months on: this and next month are due

    ours = await register(api, reception, "QX-DFJD-HPSQ")
    far = today + dt.timedelta(days=400)
    case_a = await _flag(
        api,
        reception,
        ours["id"],
        leader_account_id=api.seed.account_ids["dongfeng"],
        unit_ids=[units["QX-DFJD"], units["QX-ZJJ"]],
        plan_due_on=far.isoformat(),
    )
    assert case_a["plan_due_on"] == far.isoformat()
    theirs = await register(api, reception, "QX-HHJD-BHSQ")
    past = today - dt.timedelta(days=3)
    case_b = await _flag(
        api,
        reception,
        theirs["id"],
        leader_account_id=api.seed.account_ids["hehua"],
        unit_ids=[units["QX-HHJD"]],
        plan_due_on=past.isoformat(),
    )
    resp = await api.client.post(
        f"/api/backlog/{case_a['id']}/progress",
        json={"unit_id": units["QX-DFJD"], "month": f"{this_month:%Y-%m}", "text": "已走访"},
        headers=await api.login("dongfeng"),
    )
    assert resp.status == 201, await resp.text()

    # Today: only the overdue plan (this month's entries are not missing yet).
    now = await _attention(api, "leader", f"?as_of={today}")
    assert [(r["case_id"], r["unit_id"]) for r in now["units"]] == [
        (case_b["id"], units["QX-HHJD"])
    ]
    row = now["units"][0]
    assert (row["plan_overdue"], row["days_overdue"], row["plan_due_on"]) == (
        True,
        3,
        past.isoformat(),
    )
    assert row["lookup_code"] == theirs["lookup_code"]
    assert (now["overdue_plans"], now["missing_entries"]) == (1, 0)

    # Two months on: the months each unit has not reported, per unit.
    on = await _attention(api, "leader", f"?as_of={later}")
    got = {(r["case_id"], r["unit_id"]): r for r in on["units"]}
    assert got[(case_a["id"], units["QX-DFJD"])]["missing_months"] == [f"{next_month:%Y-%m}"]
    assert got[(case_a["id"], units["QX-ZJJ"])]["missing_months"] == [
        f"{this_month:%Y-%m}",
        f"{next_month:%Y-%m}",
    ]
    assert got[(case_a["id"], units["QX-ZJJ"])]["plan_overdue"] is False
    assert got[(case_b["id"], units["QX-HHJD"])]["missing_months"] == [
        f"{this_month:%Y-%m}",
        f"{next_month:%Y-%m}",
    ]
    assert on["missing_entries"] == 5

    # A sub-district sees its own subtree only; a unit outside it is refused.
    dongfeng = await _attention(api, "dongfeng", f"?as_of={later}")
    assert [(r["case_id"], r["unit_id"]) for r in dongfeng["units"]] == [
        (case_a["id"], units["QX-DFJD"])
    ]
    resp = await api.client.get(
        f"/api/backlog/attention?unit_id={units['QX-HHJD']}", headers=await api.login("dongfeng")
    )
    assert resp.status == 403
    # The housing bureau is involved but the item is outside its scope (registered in a
    # community, not handled there): like the case itself, the row is not shown to it.
    assert (await _attention(api, "housing", f"?as_of={later}"))["units"] == []

    # A new due day clears the overdue plan; a date that is not one is refused.
    resp = await api.client.put(
        f"/api/backlog/{case_b['id']}/plan-due",
        json={"plan_due_on": "2024-13-01"},
        headers=reception,
    )
    assert resp.status == 422
    resp = await api.client.put(
        f"/api/backlog/{case_b['id']}/plan-due",
        json={"plan_due_on": (today + dt.timedelta(days=30)).isoformat()},
        headers=reception,
    )
    assert resp.status == 200, await resp.text()
    assert (await _attention(api, "leader", f"?as_of={today}"))["units"] == []
    # another sub-district may not move the plan
    resp = await api.client.put(
        f"/api/backlog/{case_b['id']}/plan-due",
        json={"plan_due_on": None},
        headers=await api.login("dongfeng"),
    )
    assert resp.status == 403

    # A resolved case needs no more attention.
    hehua = await api.login("hehua")
    await act(api, reception, theirs["id"], "transfer", to_unit_id=units["QX-HHJD"])
    await act(api, hehua, theirs["id"], "acknowledge")
    await act(api, hehua, theirs["id"], "accept")
    await act(api, hehua, theirs["id"], "outcome", outcome="explain", resolved=True)
    on = await _attention(api, "leader", f"?as_of={later}")
    assert {r["case_id"] for r in on["units"]} == {case_a["id"]}


async def test_items_api_backlog_close_future_month_and_named_units(api: Api) -> None:
    units = api.seed.units
    reception = await api.login("reception")
    housing = await api.login("housing")
    this_month = local_date(utcnow()).replace(day=1)
    next_month = (this_month + dt.timedelta(days=32)).replace(day=1)
    item = await register(api, reception, "QX-XFJ-JDZX")
    case = await _flag(
        api,
        reception,
        item["id"],
        leader_account_id=api.seed.account_ids["dongfeng"],
        unit_ids=[units["QX-DFJD"]],
    )
    assert case["closed_at"] is None
    await act(api, reception, item["id"], "transfer", to_unit_id=units["QX-ZJJ"])
    await act(api, housing, item["id"], "acknowledge")
    await act(api, housing, item["id"], "accept")

    async def progress(headers: dict[str, str], unit: str, month: dt.date) -> Any:
        return await api.client.post(
            f"/api/backlog/{case['id']}/progress",
            json={"unit_id": units[unit], "month": f"{month:%Y-%m}", "text": "已走访"},
            headers=headers,
        )

    # the handling unit was never listed on the case, and writes its entry all the same
    resp = await progress(housing, "QX-ZJJ", this_month)
    assert resp.status == 201, await resp.text()
    resp = await progress(housing, "QX-ZJJ", next_month)
    assert resp.status == 422
    assert f"progress for {next_month:%Y-%m} cannot be written" in await resp.text()

    close = f"/api/backlog/{case['id']}/close"
    resp = await api.client.post(close, headers=await api.login("dongfeng"))
    assert resp.status == 422
    assert "not 'concluded'" in await resp.text()
    await act(api, housing, item["id"], "opinion", decision="支持", legal_basis="《条例》")
    await act(api, housing, item["id"], "outcome", outcome="support", resolved=True)
    await act(api, housing, item["id"], "conclude", petitioner_waived=True)
    resp = await api.client.post(close, headers=housing)  # not a leader
    assert resp.status == 403, await resp.text()
    resp = await api.client.post(close, headers=await api.login("dongfeng"))
    assert resp.status == 200, await resp.text()
    closed = await resp.json()
    assert closed["closed_by"] == api.seed.account_ids["dongfeng"]
    resp = await api.client.post(close, headers=await api.login("dongfeng"))
    assert resp.status == 409
    later = next_month + dt.timedelta(days=400)
    resp = await api.client.get(
        f"/api/backlog/{case['id']}/missing?through={later}", headers=reception
    )
    missing = (await resp.json())["missing_months"]
    assert missing == {str(units["QX-DFJD"]): []}
    page = await (
        await api.client.get("/api/backlog/mine", headers=await api.login("dongfeng"))
    ).text()
    assert "已销号" in page
    assert "缺少月度进展" not in page
    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="backlog_close", object_id=str(case["id"]))
    assert len(log) == 1
