"""Identity numbers and phones masked in every view, revealed only on an audited request."""

from __future__ import annotations

import json

from records import accounts
from tests.api.items_api_support import PHONE, act, register
from tests.helpers import Api

ID = "110101195001011234"


async def test_views_mask_and_only_an_audited_reveal_shows_the_whole_value(
    api_sqlite: Api,
) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    leader = await api.login("leader")
    full = await (await api.client.get(f"/api/items/{item['id']}", headers=leader)).json()
    listed = await (await api.client.get("/api/items", headers=leader)).json()
    for body in (item, full, listed):
        raw = json.dumps(body, ensure_ascii=False)
        assert ID not in raw
        assert PHONE not in raw
    assert full["petitioners"][0]["id_number"] == "110***********1234"
    assert full["petitioners"][0]["phone"] == "138****8000"
    assert full["petitioners"][0]["position"] == 0

    url = f"/api/items/{item['id']}/petitioners/0/reveal"
    resp = await api.client.post(url, json={"field": "id_number"}, headers=leader)
    assert resp.status == 422  # a reason is required
    resp = await api.client.post(
        url, json={"field": "id_number", "reason": "核对身份"}, headers=leader
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["value"] == ID
    resp = await api.client.post(url, json={"field": "phone", "reason": "回访"}, headers=leader)
    assert (await resp.json())["value"] == PHONE
    # a reader out of scope learns nothing
    other = await api.login("hehua")
    resp = await api.client.post(url, json={"field": "id_number", "reason": "看看"}, headers=other)
    assert resp.status in (403, 404)
    assert ID not in await resp.text()
    resp = await api.client.post(
        f"/api/items/{item['id']}/petitioners/3/reveal",
        json={"field": "phone", "reason": "回访"},
        headers=leader,
    )
    assert resp.status == 404

    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="reveal_petitioner")
    ok = [e for e in log if e.outcome == "ok"]
    assert sorted((e.detail["field"], e.detail["reason"]) for e in ok) == [
        ("id_number", "核对身份"),
        ("phone", "回访"),
    ]
    assert {e.object_id for e in ok} == {item["id"]}
    assert all(e.actor == ok[0].actor and e.at is not None for e in ok)
    assert ID not in json.dumps([e.detail for e in log], ensure_ascii=False)


async def test_staff_record_a_rating_for_a_petitioner_without_a_phone(api_sqlite: Api) -> None:
    api = api_sqlite
    reception = await api.login("reception")
    unit = api.seed.units["QX-XFJ-JDZX"]
    no_phone = [{"name": "赵六", "address": "和平路2号"}]
    item = await register(api, reception, "QX-XFJ-JDZX", petitioners=no_phone)
    with_phone = await register(api, reception, "QX-XFJ-JDZX")
    for it in (item, with_phone):
        await act(api, reception, it["id"], "assign", to_unit_id=unit)
        await act(api, reception, it["id"], "acknowledge")
        await act(api, reception, it["id"], "accept")
    body = {"stage": "acceptance", "satisfied": True, "note": "来信表示满意"}
    refused = await act(api, reception, with_phone["id"], "evaluation", status=422, **body)
    assert "phone" in refused["error"]["message"]
    rated = await act(api, reception, item["id"], "evaluation", **body)
    assert rated["evaluation"]["acceptance"] is True
    assert rated["evaluation"]["acceptance_recorded_by"] == api.seed.account_ids["reception"]
    await act(api, reception, item["id"], "evaluation", status=409, **body)
    async with api.seed.store.transaction() as tx:
        log = await accounts.audit_entries(tx, action="record_evaluation")
    assert [(e.object_id, e.detail["recorded_by_staff"]) for e in log] == [(item["id"], True)]
