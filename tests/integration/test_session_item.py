"""Sessions and petition items together: a visit's receipt carries the item's lookup code,
and a mediation's outcome is written to the item's history."""

from __future__ import annotations

from tests.api.items_api_support import register
from tests.helpers import Api


async def test_visit_receipt_has_the_lookup_code_of_the_registered_item(api_sqlite: Api) -> None:
    api = api_sqlite
    officer_headers = await api.login("reception")
    kiosk = await api.ws(token=api.seed.terminals["QX-DFJD-HPSQ"])
    officer = await api.ws(headers=officer_headers)
    visit = await kiosk.call("visit.request", category="城乡建设")
    sid = visit["session"]["id"]
    await officer.call("visit.accept", session=sid)
    # the officer registers the item while talking (video channel, bound to this session)
    item = await register(api, officer_headers, "QX-XFJ-JDZX", channel="video", session_id=sid)
    await officer.call("session.link_item", session=sid, item_id=item["id"])
    await officer.call("session.end", session=sid, outcome="registered")
    ended = await kiosk.event("session.ended", session=sid)
    code = ended["receipt"]["lookup_code"]
    assert code.replace("-", "") == item["lookup_code"].replace("-", "")
    # the code on the receipt works on the public progress page
    resp = await api.client.get(f"/api/public/progress?code={code}")
    assert resp.status == 200
    await kiosk.close()
    await officer.close()


async def test_mediation_outcome_goes_into_the_item_history(api_sqlite: Api) -> None:
    api = api_sqlite
    headers = await api.login("mediator")
    reception = await api.login("reception")
    item = await register(api, reception, "QX-XFJ-JDZX")
    # the reception centre brings in the judicial bureau's mediator as co-handler
    resp = await api.client.post(
        f"/api/items/{item['id']}/co-handlers",
        json={"unit_id": api.seed.units["QX-SFJ"]},
        headers=reception,
    )
    assert resp.status == 200, await resp.text()
    mediator = await api.ws(headers=headers)
    created = await mediator.call("session.create", kind="mediation", title="邻里纠纷调解")
    sid = created["session"]["id"]
    await mediator.call("session.join", session=sid)
    await mediator.call("session.link_item", session=sid, item_id=item["id"])
    outsider = await api.ws(headers=await api.login("housing"))
    refused = await outsider.request(
        {"type": "session.link_item", "session": sid, "item_id": item["id"]}
    )
    assert refused["code"] == "forbidden"
    await outsider.close()
    await mediator.call("session.end", session=sid, outcome="agreement_reached")
    history = await (
        await api.client.get(f"/api/items/{item['id']}/history", headers=reception)
    ).json()
    entries = history["history"] if isinstance(history, dict) else history
    notes = [e for e in entries if e.get("event") == "note" or e.get("type") == "note"]
    assert notes, entries
    assert "agreement_reached" in str(notes[-1])
    await mediator.close()
