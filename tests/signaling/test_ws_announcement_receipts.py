"""A kiosk's receipt of an announcement (``announcement.shown``): once, in scope, terminals only."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api

HPSQ = "QX-DFJD-HPSQ"
XYSQ = "QX-DFJD-XYSQ"
BHSQ = "QX-HHJD-BHSQ"


async def _listed(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    resp = await api.client.get("/api/announcements", headers=headers)
    assert resp.status == 200, await resp.text()
    found: dict[str, Any] = (await resp.json())["announcements"][0]
    return found


async def test_a_receipt_per_terminal_once_and_only_in_scope(api: Api) -> None:
    headers = await api.login("dongfeng")
    resp = await api.client.post(
        "/api/announcements",
        json={"title": "停水通知", "body": "明日9时至12时停水", "expires_in_h": 2},
        headers=headers,
    )
    assert resp.status == 201, await resp.text()
    ann = (await resp.json())["id"]
    assert (await _listed(api, headers))["delivery"] == {"terminals": 2, "shown": []}

    kiosk = await api.ws(token=api.seed.terminals[HPSQ])
    assert await kiosk.call("announcement.shown", announcement=ann) == {"recorded": True}
    # shown again (a reload, a reconnect): nothing new is written
    assert await kiosk.call("announcement.shown", announcement=ann) == {"recorded": False}
    delivery = (await _listed(api, headers))["delivery"]
    assert delivery["terminals"] == 2
    assert [(s["name"], s["unit_name"]) for s in delivery["shown"]] == [
        (f"{HPSQ} kiosk", "和平社区")
    ]

    # a terminal of another sub-district does not receive it, so it cannot say it showed it
    outside = await api.ws(token=api.seed.terminals[BHSQ])
    refused = await outside.request({"type": "announcement.shown", "announcement": ann})
    assert refused["type"] == "error"
    assert refused["code"] == "not_found"
    # officials do not show announcements
    official = await api.ws(headers=headers)
    refused = await official.request({"type": "announcement.shown", "announcement": ann})
    assert refused["code"] == "forbidden"
    assert len((await _listed(api, headers))["delivery"]["shown"]) == 1
