"""``GET /api/leaders`` (approvers and the duty roster) and who acted in an item's history."""

from __future__ import annotations

from tests.api.items_api_support import act, register
from tests.helpers import Api


async def test_leaders_of_the_scope_above_and_the_bureau(api: Api) -> None:
    housing = await api.login("housing")
    resp = await api.client.get("/api/leaders", headers=housing)
    assert resp.status == 200
    names = {(x["name"], x["unit_name"]) for x in (await resp.json())["leaders"]}
    # the bureau's leader leads every unit (an extension's approver); a sub-district's does not
    assert ("Leader", "示例区信访局") in names
    assert all(name != "Dongfeng" for name, _ in names)

    dongfeng = await api.login("dongfeng")
    own = api.seed.units["QX-DFJD"]
    resp = await api.client.get(f"/api/leaders?unit_id={own}", headers=dongfeng)
    assert [x["name"] for x in (await resp.json())["leaders"]] == ["Dongfeng"]


async def test_history_names_who_acted(api: Api) -> None:
    dongfeng = await api.login("dongfeng")
    item = await register(api, dongfeng, "QX-DFJD-HPSQ")
    await act(api, dongfeng, item["id"], "note", reason="电话回访")
    resp = await api.client.get(f"/api/items/{item['id']}/history", headers=dongfeng)
    names = [e["account_name"] for e in (await resp.json())["history"]]
    assert names[-1] == "Dongfeng"


async def test_an_item_names_its_units(api: Api) -> None:
    dongfeng = await api.login("dongfeng")
    item = await register(api, dongfeng, "QX-DFJD-HPSQ")
    resp = await api.client.get(f"/api/items/{item['id']}", headers=dongfeng)
    names = (await resp.json())["unit_names"]
    assert names[str(item["registering_unit_id"])] == "和平社区"
