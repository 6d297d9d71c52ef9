"""An invite holder reads over REST what it sees on /ws, only while admitted (issue 13, 5).

With an invite as Bearer, ``GET /api/sessions/{id}`` used to return the participants, every
chat line and the linked item while the invitee waited in the lobby, and after it was refused.
"""

from __future__ import annotations

from typing import Any

from tests.api.items_api_support import register
from tests.helpers import Api
from tests.signaling.test_ws_rooms import invite


async def _read(api: Api, token: str, sid: str) -> tuple[int, dict[str, Any]]:
    resp = await api.client.get(
        f"/api/sessions/{sid}", headers={"Authorization": f"Bearer {token}"}
    )
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def test_an_invitee_reads_the_session_only_while_admitted(api: Api) -> None:
    headers = await api.login("mediator")
    mediator = await api.ws(headers=headers)
    sid = (await mediator.call("session.create", kind="mediation", title="调解", lobby=True))[
        "session"
    ]["id"]
    await mediator.call("session.join", session=sid)
    await mediator.call("chat.send", session=sid, text="内部意见：先不要告诉当事人")
    item_id = (await register(api, await api.login("reception"), "QX-SFJ"))["id"]
    await mediator.call("session.link_item", session=sid, item_id=item_id)

    lawyer_inv = await invite(api, headers, sid, "lawyer", "王律师")
    status, body = await _read(api, lawyer_inv["token"], sid)  # not even joined
    assert status == 403, body
    assert body["error"]["code"] == "not_admitted"
    assert sid in body["error"]["message"]

    lawyer = await api.ws(token=lawyer_inv["token"])
    await lawyer.call("session.join", session=sid)
    status, body = await _read(api, lawyer_inv["token"], sid)  # in the lobby
    assert status == 403, body
    assert "lobby" in body["error"]["message"]

    pid = (await mediator.event("lobby.waiting", session=sid))["participant"]["id"]
    await mediator.call("lobby.admit", session=sid, participant=pid)
    snapshot = await lawyer.event("admission", session=sid, state="admitted")
    status, body = await _read(api, lawyer_inv["token"], sid)  # admitted: the snapshot
    assert status == 200, body
    assert body["id"] == sid
    assert body["participant"]["id"] == pid
    assert {p["id"] for p in body["participants"]} == {p["id"] for p in snapshot["participants"]}
    text = str(body)
    assert "内部意见" not in text
    assert item_id not in text
    assert not {"events", "recordings", "item_id", "lobby"} & set(body)

    party_inv = await invite(api, headers, sid, "party", "李某")
    party = await api.ws(token=party_inv["token"])
    await party.call("session.join", session=sid)
    party_pid = (await mediator.event("lobby.waiting", session=sid))["participant"]["id"]
    await mediator.call("lobby.refuse", session=sid, participant=party_pid)
    await party.event("admission", session=sid, state="refused")
    status, body = await _read(api, party_inv["token"], sid)  # refused
    assert status == 403, body
    assert body["error"]["code"] == "not_admitted"

    # an invite holder reads no org tree either (nothing it sees on /ws)
    resp = await api.client.get(
        "/api/orgs", headers={"Authorization": f"Bearer {lawyer_inv['token']}"}
    )
    assert resp.status == 403
    # officials still read everything in scope
    full = await (await api.client.get(f"/api/sessions/{sid}", headers=headers)).json()
    assert full["item_id"] == item_id
