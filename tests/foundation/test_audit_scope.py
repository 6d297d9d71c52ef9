"""The audit log is read within the caller's scope, like every other read (issue 13, finding 4).

It used to check the caller's role on its own unit, then return every unit's entries;
``?object_id=`` read another unit's item history.
"""

from __future__ import annotations

from typing import Any

from tests.api.items_api_support import register
from tests.foundation.test_access import _visit_of
from tests.helpers import Api


async def _audit(api: Api, headers: dict[str, str], query: str = "") -> list[dict[str, Any]]:
    resp = await api.client.get(f"/api/audit?limit=1000{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    entries: list[dict[str, Any]] = (await resp.json())["entries"]
    return entries


async def test_a_unit_admin_reads_only_its_subtree_and_the_bureau_reads_all(api: Api) -> None:
    ours = await _visit_of(api, "QX-DFJD-HPSQ")  # 和平社区, under 东风街道
    theirs = await _visit_of(api, "QX-HHJD-BHSQ")  # 滨河社区, under 荷花街道
    hehua = await api.login("hehua")  # reception + leader of 荷花街道
    their_item = (await register(api, hehua, "QX-HHJD"))["id"]
    dongfeng = await api.login("dongfeng")
    our_item = (await register(api, dongfeng, "QX-DFJD"))["id"]
    bureau = await api.login("reception")  # the bureau's reception centre reads everything
    for path in (f"/api/sessions/{ours}", f"/api/sessions/{theirs}"):
        assert (await api.client.get(path, headers=bureau)).status == 200
    for item in (our_item, their_item):
        assert (await api.client.get(f"/api/items/{item}", headers=bureau)).status == 200

    local = await api.login("dongfeng_admin")
    seen = {e["object_id"] for e in await _audit(api, local)}
    assert {ours, our_item} <= seen
    assert theirs not in seen
    assert their_item not in seen
    # the history of another unit's item or session: nothing, not even by asking for it
    assert await _audit(api, local, f"&object_id={their_item}") == []
    assert await _audit(api, local, f"&object_id={theirs}") == []
    assert await _audit(api, local, f"&object_id={our_item}") != []
    # its own people's logins, not the other sub-district's
    actors = {e["actor"] for e in await _audit(api, local, "&action=login")}
    assert f"account:{api.seed.account_ids['dongfeng']}" in actors
    assert f"account:{api.seed.account_ids['hehua']}" not in actors

    everything = {e["object_id"] for e in await _audit(api, await api.login("bureau_admin"))}
    assert {ours, theirs, our_item, their_item} <= everything


async def test_reading_the_audit_log_still_needs_the_auditor_or_admin_role(api: Api) -> None:
    resp = await api.client.get("/api/audit", headers=await api.login("dongfeng"))
    assert resp.status == 403
