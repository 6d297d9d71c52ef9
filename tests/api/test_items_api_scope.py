"""Scope over HTTP: subtrees, confidential accusations (Art. 30), recusal (Art. 28), audit."""

from __future__ import annotations

import pytest

from records import accounts
from tests.api.items_api_support import register
from tests.helpers import Api


async def _ids(api: Api, who: str, query: str = "") -> set[str]:
    headers = await api.login(who)
    resp = await api.client.get(f"/api/items{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return {i["id"] for i in (await resp.json())["items"]}


async def _denials(api: Api, who: str, item_id: str) -> list[accounts.AuditRecord]:
    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, object_id=item_id)
    actor = f"account:{api.seed.account_ids[who]}"
    return [e for e in log if e.actor == actor and e.outcome == "denied"]


async def test_a_sub_district_sees_only_its_subtree(api: Api) -> None:
    ours = await register(api, await api.login("heping_agent"), "QX-DFJD-HPSQ")
    theirs = await register(api, await api.login("binhe_agent"), "QX-HHJD-BHSQ")
    assert ours["id"] in await _ids(api, "dongfeng")
    assert theirs["id"] not in await _ids(api, "dongfeng")
    assert {ours["id"], theirs["id"]} <= await _ids(api, "leader")  # the petition bureau
    assert await _ids(api, "housing") == set()
    # a unit outside the caller's scope may not be asked for (and the refusal is logged)
    dongfeng = await api.login("dongfeng")
    resp = await api.client.get(f"/api/items?unit_id={api.seed.units['QX-HHJD']}", headers=dongfeng)
    assert resp.status == 403
    # reading one item: in scope 200 and audit-logged, outside 403 and audit-logged
    resp = await api.client.get(f"/api/items/{theirs['id']}", headers=dongfeng)
    assert resp.status == 403
    assert await _denials(api, "dongfeng", theirs["id"])
    resp = await api.client.get(f"/api/items/{ours['id']}", headers=dongfeng)
    assert resp.status == 200
    async with api.seed.store.transaction() as tx:
        reads = await accounts.audit_entries(tx, action="view_item", object_id=ours["id"])
    assert [r.actor for r in reads] == [f"account:{api.seed.account_ids['dongfeng']}"]
    # a transfer widens the scope to the handling unit
    leader = await api.login("leader")
    resp = await api.client.post(
        f"/api/items/{theirs['id']}/transfer",
        json={"to_unit_id": api.seed.units["QX-ZJJ"]},
        headers=leader,
    )
    assert resp.status == 200, await resp.text()
    assert theirs["id"] in await _ids(api, "housing")


@pytest.mark.parametrize("who", ["leader", "bureau_admin", "dongfeng", "housing"])
async def test_a_confidential_accusation_is_invisible_outside_its_handlers(
    api: Api, who: str
) -> None:
    reception = await api.login("reception")
    secret = await register(
        api,
        reception,
        "QX-XFJ-JDZX",
        type="accusation",
        request="举报某街道干部收受贿赂",
        subject_unit_id=api.seed.units["QX-DFJD"],
    )
    assert secret["confidential"] is True  # accusations are confidential by default
    assert secret["handler_account_ids"] == [api.seed.account_ids["reception"]]
    assert secret["id"] in await _ids(api, "reception")
    assert secret["id"] not in await _ids(api, who)
    headers = await api.login(who)
    for path in ("", "/history", "/notices/acceptance", "/sessions"):
        resp = await api.client.get(f"/api/items/{secret['id']}{path}", headers=headers)
        assert resp.status == 403, path
    resp = await api.client.post(
        f"/api/items/{secret['id']}/note", json={"reason": "x"}, headers=headers
    )
    assert resp.status == 403
    denials = await _denials(api, who, secret["id"])
    assert len(denials) == 5
    assert "confidential" in denials[0].detail["reason"]
    # the handler adds the leader: from then on the leader sees it
    resp = await api.client.put(
        f"/api/items/{secret['id']}/handlers/{api.seed.account_ids['leader']}",
        json={},
        headers=reception,
    )
    assert resp.status == 200, await resp.text()
    assert (secret["id"] in await _ids(api, "leader")) is True


async def test_a_recused_official_is_refused_and_the_refusal_logged(api: Api) -> None:
    reception = await api.login("reception")
    item = await register(api, reception, "QX-DFJD-HPSQ")
    dongfeng_id = api.seed.account_ids["dongfeng"]
    resp = await api.client.put(
        f"/api/items/{item['id']}/handlers/{dongfeng_id}",
        json={"recused": True},
        headers=reception,
    )
    assert resp.status == 422  # a recusal needs its reason
    resp = await api.client.put(
        f"/api/items/{item['id']}/handlers/{dongfeng_id}",
        json={"recused": True, "reason": "信访人系其近亲属"},
        headers=reception,
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["recused_account_ids"] == [dongfeng_id]
    dongfeng = await api.login("dongfeng")
    assert (await api.client.get(f"/api/items/{item['id']}", headers=dongfeng)).status == 403
    resp = await api.client.post(
        f"/api/items/{item['id']}/transfer",
        json={"to_unit_id": api.seed.units["QX-ZJJ"]},
        headers=dongfeng,
    )
    assert resp.status == 403
    assert item["id"] not in await _ids(api, "dongfeng")
    denials = await _denials(api, "dongfeng", item["id"])
    assert len(denials) == 2
    assert all("recused" in d.detail["reason"] for d in denials)
    # another official of the same sub-district still works on it
    assert item["id"] in await _ids(api, "heping_agent")


async def test_due_lists_per_unit_hide_confidential_items(api_sqlite: Api) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    open_item = await register(api, reception, "QX-XFJ-JDZX")
    secret = await register(
        api, reception, "QX-XFJ-JDZX", type="accusation", subject_unit_id=api.seed.units["QX-DFJD"]
    )
    resp = await api.client.get("/api/items/due?within_days=30", headers=reception)
    due = await resp.json()
    assert {d["item_id"] for d in due["items"]} == {open_item["id"], secret["id"]}
    assert all(d["due_what"] == "route" and 0 < d["days_left"] <= 30 for d in due["items"])
    leader = await api.login("leader")
    due = await (await api.client.get("/api/items/due?within_days=30", headers=leader)).json()
    assert {d["item_id"] for d in due["items"]} == {open_item["id"]}
    overdue = await (await api.client.get("/api/items/overdue", headers=leader)).json()
    assert overdue["items"] == []
    dongfeng = await api.login("dongfeng")
    resp = await api.client.get(
        f"/api/items/due?unit_id={api.seed.units['QX-XFJ']}", headers=dongfeng
    )
    assert resp.status == 403
