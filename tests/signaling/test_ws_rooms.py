"""Mediation with a lobby, training with raise-hand and promotion, announcements."""

from __future__ import annotations

import asyncio
from typing import Any

from records.enums import AdmissionState, ParticipantRole, SessionState
from tests.helpers import Api
from tests.signaling.conftest import denials, session_of

HPSQ = "QX-DFJD-HPSQ"
XYSQ = "QX-DFJD-XYSQ"
BHSQ = "QX-HHJD-BHSQ"

#: an offer that sends audio and video (what a publishing browser sends)
SENDING_OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\n"
    "a=rtpmap:96 VP8/90000\r\n"
)
#: a watch-only offer (a viewer's browser opens a data channel and receives)
WATCHING_OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
)


async def invite(api: Api, headers: dict[str, str], sid: str, role: str, name: str) -> Any:
    resp = await api.client.post(
        f"/api/sessions/{sid}/invites", json={"role": role, "name": name}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_mediation_with_a_lobby(api_sqlite: Api) -> None:
    api = api_sqlite
    headers = await api.login("mediator")
    mediator = await api.ws(headers=headers)
    created = await mediator.call(
        "session.create", kind="mediation", title="邻里纠纷调解", lobby=True
    )
    sid = created["session"]["id"]
    assert created["session"]["state"] == "waiting"
    joined = await mediator.call("session.join", session=sid)
    assert joined["participant"]["role"] == "mediator"
    assert joined["session"]["state"] == "live"

    lawyer_inv = await invite(api, headers, sid, "lawyer", "王律师")
    lawyer = await api.ws(token=lawyer_inv["token"])
    assert lawyer.hello["data"]["principal"]["kind"] == "invite"
    waiting = await lawyer.call("session.join", session=sid)
    assert waiting["participant"]["admission"] == "lobby"
    assert waiting["participants"] == [] or all(
        p["id"] != waiting["participant"]["id"] for p in waiting["participants"]
    )
    # in the lobby: no chat, no media
    refused = await lawyer.request({"type": "chat.send", "session": sid, "text": "hi"})
    assert refused["code"] == "forbidden"
    lobby = await mediator.event("lobby.waiting", session=sid)
    lawyer_pid = lobby["participant"]["id"]
    assert lobby["participant"]["role"] == "lawyer"
    await mediator.call("lobby.admit", session=sid, participant=lawyer_pid)
    admitted = await lawyer.event("admission", session=sid, state="admitted")
    assert admitted["participant"]["admission"] == "admitted"
    assert {p["role"] for p in admitted["participants"]} == {"mediator", "lawyer"}
    seen = await mediator.event("participant.joined", session=sid)
    while seen["participant"]["role"] == "mediator":  # its own join came first
        seen = await mediator.event("participant.joined", session=sid)
    assert seen["participant"]["id"] == lawyer_pid
    await lawyer.call("chat.send", session=sid, text="我是律师")
    assert (await mediator.event("chat.message", session=sid))["text"] == "我是律师"

    party_inv = await invite(api, headers, sid, "party", "李某")
    party = await api.ws(token=party_inv["token"])
    await party.call("session.join", session=sid)
    party_pid = (await mediator.event("lobby.waiting", session=sid))["participant"]["id"]
    await mediator.call("lobby.refuse", session=sid, participant=party_pid)
    await party.event("admission", session=sid, state="refused")
    again = await party.request({"type": "session.join", "session": sid})
    assert again["code"] == "forbidden"

    await mediator.call("session.end", session=sid, outcome="agreement")
    await lawyer.event("session.ended", session=sid)
    s = await session_of(api, sid)
    assert s.outcome == "agreement"
    by_role = {p.role: p for p in s.participants}
    assert by_role[ParticipantRole.LAWYER].admission is AdmissionState.ADMITTED
    assert by_role[ParticipantRole.LAWYER].joined_at is not None
    assert by_role[ParticipantRole.PARTY].admission is AdmissionState.REFUSED
    assert by_role[ParticipantRole.PARTY].joined_at is None
    assert all(p.left_at is not None for p in s.participants)


async def test_training_hands_promotion_and_attendance(api_sqlite: Api) -> None:
    api = api_sqlite
    units = api.seed.units
    trainer = await api.ws(headers=await api.login("trainer"))
    sid = (
        await trainer.call(
            "session.create", kind="training", title="信访条例培训", unit_id=units["QX"]
        )
    )["session"]["id"]
    assert (await trainer.call("session.join", session=sid))["participant"]["role"] == "trainer"

    housing = await api.ws(headers=await api.login("housing"))
    dongfeng = await api.ws(headers=await api.login("dongfeng"))
    kiosk = await api.ws(token=api.seed.terminals[HPSQ])
    viewers = [housing, dongfeng, kiosk]
    pids = []
    for v in viewers:
        joined = await v.call("session.join", session=sid)
        assert joined["participant"]["role"] == "viewer"
        # a viewer sees the trainer, not the other viewers
        others = [p for p in joined["participants"] if p["id"] != joined["participant"]["id"]]
        assert [p["role"] for p in others] == ["trainer"]
        pids.append(joined["participant"]["id"])

    counts = await trainer.event("attendance", session=sid, wait=5)
    while counts["total"] < 3:
        counts = await trainer.event("attendance", session=sid)
    assert counts["units"] == {
        str(units["QX-ZJJ"]): 1,
        str(units["QX-DFJD"]): 1,
        str(units[HPSQ]): 1,
    }
    # viewers' joins are counted, never announced one by one
    for v in (trainer, *viewers):
        joins = [e for e in v.events if e["type"] == "participant.joined"]
        assert all(e["participant"]["role"] == "trainer" for e in joins), joins
    for v in viewers:
        assert not [e for e in v.events if e["type"] == "attendance"]

    # a viewer cannot publish, even by sending an offer
    refused = await housing.request({"type": "media.offer", "session": sid, "sdp": SENDING_OFFER})
    assert refused["code"] == "forbidden"
    # watching is fine (no media worker here, so the relay itself is unavailable)
    watch = await housing.request({"type": "media.offer", "session": sid, "sdp": WATCHING_OFFER})
    assert watch["code"] == "media_unavailable"
    # nor moderate
    refused = await housing.request(
        {"type": "training.promote", "session": sid, "participant": pids[0]}
    )
    assert refused["code"] == "forbidden"

    await housing.call("hand.raise", session=sid, raised=True)
    hand = await trainer.event("hand.raised", session=sid)
    assert hand["participant"] == pids[0]
    assert hand["raised"] is True
    assert not [e for e in dongfeng.events if e["type"] == "hand.raised"]

    promoted = await trainer.call("training.promote", session=sid, participant=pids[0])
    assert promoted["role"] == "speaker"
    for v in (housing, dongfeng, trainer):
        upd = await v.event("participant.updated", session=sid)
        assert upd["participant"]["id"] == pids[0]
        assert upd["participant"]["role"] == "speaker"
    speaker = await housing.request({"type": "media.offer", "session": sid, "sdp": SENDING_OFFER})
    assert speaker["code"] == "media_unavailable"  # allowed now; only the worker is missing
    await trainer.call("training.demote", session=sid, participant=pids[0])
    refused = await housing.request({"type": "media.offer", "session": sid, "sdp": SENDING_OFFER})
    assert refused["code"] == "forbidden"

    await kiosk.call("session.leave", session=sid)
    counts = await trainer.event("attendance", session=sid)
    while counts["total"] != 2:
        counts = await trainer.event("attendance", session=sid)
    assert str(units[HPSQ]) not in counts["units"]

    s = await session_of(api, sid)
    assert s.state is SessionState.LIVE
    kiosk_p = next(p for p in s.participants if p.id == pids[2])
    assert kiosk_p.left_at is not None
    assert kiosk_p.unit_id == units[HPSQ]
    viewer_denials = await denials(
        api,
        actor=housing.hello["data"]["principal"]["kind"]
        + ":"
        + str(housing.hello["data"]["principal"]["id"]),
    )
    assert {d.action for d in viewer_denials} >= {"media.offer", "training.promote"}


async def test_announcements_reach_terminals_in_scope(api_sqlite: Api) -> None:
    api = api_sqlite
    in_scope = await api.ws(token=api.seed.terminals[HPSQ])
    outside = await api.ws(token=api.seed.terminals[BHSQ])
    headers = await api.login("dongfeng")
    resp = await api.client.post(
        "/api/announcements",
        json={"title": "停水通知", "body": "明日9时至12时停水", "expires_in_h": 2},
        headers=headers,
    )
    assert resp.status == 201, await resp.text()
    ann = await resp.json()
    pushed = await in_scope.event("announcement")
    assert pushed["announcement"]["id"] == ann["id"]
    assert pushed["announcement"]["title"] == "停水通知"
    await outside.call("ping")
    await asyncio.sleep(0.2)
    await outside.call("ping")
    assert not [e for e in outside.events if e["type"] == "announcement"]
    later = await api.ws(token=api.seed.terminals[XYSQ])
    assert [a["id"] for a in later.hello["data"]["announcements"]] == [ann["id"]]
    later_out = await api.ws(token=api.seed.terminals[BHSQ])
    assert later_out.hello["data"]["announcements"] == []
