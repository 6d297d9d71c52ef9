"""Listing and withdrawing announcements (``GET /api/announcements``, ``.../withdraw``)."""

from __future__ import annotations

from tests.helpers import Api


async def test_list_and_withdraw(api: Api) -> None:
    leader = await api.login("leader")
    resp = await api.client.post(
        "/api/announcements",
        json={"unit_id": api.seed.units["QX-DFJD-HPSQ"], "title": "停水通知", "body": "周三停水"},
        headers=leader,
    )
    assert resp.status == 201, await resp.text()
    ann = await resp.json()

    dongfeng = await api.login("dongfeng")
    resp = await api.client.get("/api/announcements", headers=dongfeng)
    listed = (await resp.json())["announcements"]
    assert [(a["id"], a["unit_name"], a["author_name"]) for a in listed] == [
        (ann["id"], "和平社区", "Leader")
    ]
    # a community of its own sub-district: Dongfeng's leader may withdraw it too
    assert listed[0]["can_withdraw"] is True
    hehua = await api.login("hehua")
    resp = await api.client.get("/api/announcements", headers=hehua)
    assert (await resp.json())["announcements"] == []
    resp = await api.client.post(f"/api/announcements/{ann['id']}/withdraw", headers=hehua)
    assert resp.status == 403

    leader = await api.login("leader")
    resp = await api.client.post(f"/api/announcements/{ann['id']}/withdraw", headers=leader)
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["withdrawn_at"] is not None
    assert done["can_withdraw"] is False
    resp = await api.client.post("/api/announcements/999999/withdraw", headers=leader)
    assert resp.status == 404
