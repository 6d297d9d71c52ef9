"""``GET /api/duty``: the week's leaders on duty per unit a ``to_leader`` visit may reach."""

from __future__ import annotations

import datetime as dt

from tests.helpers import Api


async def test_the_week_read_by_reception_and_edited_by_the_leader(api: Api) -> None:
    leader = await api.login("leader")
    bureau = api.seed.units["QX-XFJ"]
    day = dt.date(2026, 3, 4)
    resp = await api.client.put(
        f"/api/duty/{day}",
        json={"unit_id": bureau, "account_id": api.seed.account_ids["leader"]},
        headers=leader,
    )
    assert resp.status == 200, await resp.text()
    resp = await api.client.get("/api/duty?from=2026-03-02", headers=leader)
    week = await resp.json()
    assert week["days"][0] == "2026-03-02"
    assert len(week["days"]) == 7
    rows = {r["unit_id"]: r for r in week["units"]}
    assert rows[bureau]["can_edit"] is True
    assert rows[bureau]["days"]["2026-03-04"] == {
        "account_id": api.seed.account_ids["leader"],
        "name": "Leader",
    }
    assert rows[bureau]["days"]["2026-03-05"] is None
    assert [x["name"] for x in rows[bureau]["leaders"]] == ["Leader"]

    reception = await api.login("reception")
    resp = await api.client.get("/api/duty?from=2026-03-02&days=3", headers=reception)
    rows = {r["unit_id"]: r for r in (await resp.json())["units"]}
    # the reception centre (where its visits arrive) and the bureau above it, read only
    assert set(rows) == {api.seed.units["QX-XFJ-JDZX"], bureau}
    assert rows[bureau]["can_edit"] is False
    assert rows[bureau]["days"]["2026-03-04"]["name"] == "Leader"

    resp = await api.client.get("/api/duty?from=March", headers=reception)
    assert resp.status == 422
