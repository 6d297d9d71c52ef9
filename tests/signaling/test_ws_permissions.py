"""Permissions on /ws: scope of terminals, revoked invites, refusals in the audit log."""

from __future__ import annotations

from records.enums import AdmissionState
from tests.helpers import Api
from tests.signaling.conftest import denials, session_of

HPSQ = "QX-DFJD-HPSQ"
BHSQ = "QX-HHJD-BHSQ"


async def test_a_terminal_cannot_join_or_see_another_communitys_session(api_sqlite: Api) -> None:
    api = api_sqlite
    b = await api.ws(token=api.seed.terminals[BHSQ])
    sid = (await b.call("visit.request", category="c"))["session"]["id"]
    a = await api.ws(token=api.seed.terminals[HPSQ])
    a_ref = f"terminal:{api.seed.terminal_ids[HPSQ]}"
    for attempt in (
        {"type": "session.join", "session": sid},
        {"type": "visit.cancel", "session": sid},
        {"type": "session.end", "session": sid},
        {"type": "visit.accept", "session": sid},
        {"type": "queue.watch"},
        {"type": "session.create", "kind": "call", "title": "x"},
    ):
        reply = await a.request(attempt)
        assert reply["type"] == "error", (attempt, reply)
        assert reply["code"] == "forbidden", (attempt, reply)
    # nothing of B's visit reached A, and B's visit is untouched
    assert not [e for e in a.events if e.get("session") == sid]
    resp = await api.client.get(f"/api/sessions/{sid}", headers=api.terminal(HPSQ))
    assert resp.status in (403, 404)
    s = await session_of(api, sid)
    assert [p.principal_ref for p in s.participants] == [f"terminal:{api.seed.terminal_ids[BHSQ]}"]
    refused = {d.action for d in await denials(api, actor=a_ref)}
    assert {"session.join", "visit.cancel", "session.end", "visit.accept"} <= refused
    # a terminal of the same community would not have been refused: the test is about scope
    own = await b.request({"type": "session.join", "session": sid})
    assert own["type"] == "result"


async def test_a_revoked_invite_is_refused_mid_session(api_sqlite: Api) -> None:
    api = api_sqlite
    headers = await api.login("mediator")
    mediator = await api.ws(headers=headers)
    sid = (await mediator.call("session.create", kind="mediation", title="调解"))["session"]["id"]
    await mediator.call("session.join", session=sid)
    resp = await api.client.post(
        f"/api/sessions/{sid}/invites",
        json={"role": "counsellor", "name": "心理咨询师"},
        headers=headers,
    )
    inv = await resp.json()
    guest = await api.ws(token=inv["token"])
    await guest.call("session.join", session=sid)
    pid = (await mediator.event("lobby.waiting", session=sid))["participant"]["id"]
    await mediator.call("lobby.admit", session=sid, participant=pid)
    await guest.event("admission", session=sid, state="admitted")
    await guest.call("chat.send", session=sid, text="你好")

    resp = await api.client.delete(f"/api/invites/{inv['id']}", headers=headers)
    assert resp.status == 200, await resp.text()
    removed = await guest.event("session.removed", session=sid)
    assert removed["reason"] == "invite_revoked"
    left = await mediator.event("participant.left", session=sid, participant=pid)
    assert left["reason"] == "invite_revoked"
    nxt = await guest.request({"type": "chat.send", "session": sid, "text": "还在吗"})
    assert nxt["code"] == "forbidden"
    again = await guest.request({"type": "session.join", "session": sid})
    assert again["code"] in ("forbidden", "unauthenticated")
    # a new connection with the revoked token is not even let in
    ws = await api.client.ws_connect("/ws")
    await ws.send_json({"type": "hello", "id": "h", "token": inv["token"]})
    reply = await ws.receive_json()
    assert reply["code"] == "unauthenticated"
    await ws.close()

    s = await session_of(api, sid)
    me = next(p for p in s.participants if p.id == pid)
    assert me.left_at is not None
    assert me.leave_reason == "invite_revoked"
    assert me.admission is not AdmissionState.LOBBY
    refused = await denials(api, actor=f"invite:{inv['id']}")
    assert "chat.send" in {d.action for d in refused}
    assert not [e for e in mediator.events if e["type"] == "chat.message" and e["text"] == "还在吗"]


async def test_refusals_before_hello_and_of_bad_tokens_are_audited(api_sqlite: Api) -> None:
    api = api_sqlite
    ws = await api.client.ws_connect("/ws")
    await ws.send_json({"type": "session.join", "id": "1", "session": "abc"})
    assert (await ws.receive_json())["code"] == "unauthenticated"
    await ws.send_json({"type": "hello", "id": "2", "token": "pgt_not-a-real-credential"})
    assert (await ws.receive_json())["code"] == "unauthenticated"
    await ws.close()
    anonymous = await denials(api, actor="anonymous")
    assert "ws_hello" in {d.action for d in anonymous}
    assert "session.join" in {d.action for d in anonymous}
