"""A whole video visit over /ws: queue, accept, item link, end, receipt, rating, reloads."""

from __future__ import annotations

from records.enums import ParticipantRole, SessionState
from tests.api.items_api_support import register
from tests.helpers import Api
from tests.signaling.conftest import events_of, session_of

HPSQ = "QX-DFJD-HPSQ"
XYSQ = "QX-DFJD-XYSQ"
BHSQ = "QX-HHJD-BHSQ"


async def test_a_whole_visit(api_sqlite: Api) -> None:
    api = api_sqlite
    kiosk = await api.ws(token=api.seed.terminals[HPSQ])
    assert kiosk.hello["data"]["principal"]["kind"] == "terminal"
    officer = await api.ws(headers=await api.login("reception"))
    watched = await officer.call("queue.watch")
    assert watched["visits"] == []

    asked = await kiosk.call("visit.request", category="housing")
    sid = asked["session"]["id"]
    assert asked["session"]["state"] == "waiting"
    assert asked["position"] == 1
    pos = await kiosk.event("queue.position", session=sid)
    assert pos["position"] == 1
    update = await officer.event("queue.update")
    assert [v["session"] for v in update["visits"]] == [sid]
    assert update["visits"][0]["category"] == "housing"

    accepted = await officer.call("visit.accept", session=sid)
    assert accepted["session"]["state"] == "live"
    assert accepted["participant"]["role"] == "officer"
    for side in (kiosk, officer):
        live = await side.event("session.state", session=sid, state="live")
        assert live["recording"] is True
        joined = await side.event("participant.joined", session=sid)
        assert joined["participant"]["role"] == "officer"

    unknown = await officer.request(
        {"type": "session.link_item", "session": sid, "item_id": "ITEM42"}
    )
    assert unknown["code"] == "not_found"
    item = await register(api, await api.login("reception"), "QX-XFJ-JDZX", channel="video")
    linked = await officer.call("session.link_item", session=sid, item_id=item["id"])
    assert linked["item_id"] == item["id"]
    await officer.call("chat.send", session=sid, text="您好")
    said = await kiosk.event("chat.message", session=sid)
    assert said["text"] == "您好"

    await officer.call("session.end", session=sid, outcome="registered")
    ended = await kiosk.event("session.ended", session=sid)
    assert ended["receipt"]["item_id"] == item["id"]
    assert ended["receipt"]["lookup_code"]
    assert ended["receipt"]["session"] == sid
    assert ended["receipt"]["reference"]
    rated = await kiosk.call("visit.rate", session=sid, rating=5)
    assert rated["rating"] == 5

    s = await session_of(api, sid)
    assert s.state is SessionState.ENDED
    assert s.item_id == item["id"]
    assert s.rating == 5
    assert s.outcome == "registered"
    roles = {p.role for p in s.participants}
    assert roles == {ParticipantRole.RESIDENT, ParticipantRole.OFFICER}
    for p in s.participants:
        assert p.joined_at is not None
        assert p.left_at is not None
        assert p.left_at >= p.joined_at
    names = [e["event"] for e in await events_of(api, sid)]
    for expected in ("visit_requested", "visit_accepted", "item_linked", "chat", "ended", "rated"):
        assert expected in names, names
    assert names.index("visit_requested") < names.index("visit_accepted") < names.index("ended")
    await kiosk.close()
    await officer.close()


async def test_a_visit_is_taken_once(api_sqlite: Api) -> None:
    api = api_sqlite
    kiosk = await api.ws(token=api.seed.terminals[HPSQ])
    sid = (await kiosk.call("visit.request", category="labour"))["session"]["id"]
    first = await api.ws(headers=await api.login("reception"))
    second = await api.ws(headers=await api.login("dongfeng"))
    await first.call("visit.accept", session=sid)
    late = await second.request({"type": "visit.accept", "session": sid})
    assert late["type"] == "error"
    assert late["code"] == "already_taken"
    s = await session_of(api, sid)
    assert [p.role for p in s.participants].count(ParticipantRole.OFFICER) == 1


async def test_positions_move_up_when_an_earlier_visit_is_cancelled(api_sqlite: Api) -> None:
    api = api_sqlite
    kiosks = [await api.ws(token=api.seed.terminals[c]) for c in (HPSQ, XYSQ, BHSQ)]
    sids = []
    for i, k in enumerate(kiosks):
        asked = await k.call("visit.request", category="c")
        assert asked["position"] == i + 1
        sids.append(asked["session"]["id"])
    officer = await api.ws(headers=await api.login("reception"))
    queue = await officer.call("queue.watch")
    assert [v["session"] for v in queue["visits"]] == sids
    await kiosks[0].call("visit.cancel", session=sids[0])
    third = await kiosks[2].event("queue.position", session=sids[2], position=2)
    assert third["waiting"] == 2
    await kiosks[1].event("queue.position", session=sids[1], position=1)
    update = await officer.event("queue.update", wait=5)
    while [v["session"] for v in update["visits"]] != sids[1:]:
        update = await officer.event("queue.update")
    assert [v["position"] for v in update["visits"]] == [1, 2]
    assert (await session_of(api, sids[0])).state is SessionState.CANCELLED


async def test_a_reloaded_kiosk_keeps_its_place(api_sqlite: Api) -> None:
    api = api_sqlite
    first = await api.ws(token=api.seed.terminals[HPSQ])
    s1 = (await first.call("visit.request", category="c"))["session"]["id"]
    kiosk = await api.ws(token=api.seed.terminals[XYSQ])
    s2 = (await kiosk.call("visit.request", category="c"))["session"]["id"]
    await kiosk.close()
    again = await api.ws(token=api.seed.terminals[XYSQ])
    assert again.hello["data"]["visit"]["session"]["id"] == s2
    assert again.hello["data"]["visit"]["position"] == 2
    # the reloaded kiosk still hears its queue and gets the officer
    await first.call("visit.cancel", session=s1)
    await again.event("queue.position", session=s2, position=1)
    officer = await api.ws(headers=await api.login("reception"))
    await officer.call("visit.accept", session=s2)
    await again.event("session.state", session=s2, state="live")
    s = await session_of(api, s2)
    residents = [p for p in s.participants if p.role is ParticipantRole.RESIDENT]
    assert len(residents) == 1
    assert residents[0].left_at is None
