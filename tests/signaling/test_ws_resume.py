"""Reconnect with the resume token: place and role back within the window, left after it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.helpers import Api, WsClient
from tests.signaling.conftest import eventually, session_of
from web import keys


async def hello(api: Api, headers: dict[str, str], **fields: Any) -> WsClient:
    ws = await api.client.ws_connect("/ws", headers=headers)
    client = WsClient(ws)
    client.hello = await client.request({"type": "hello", "id": "h", **fields})
    return client


async def conference(api: Api) -> tuple[str, WsClient, WsClient, dict[str, str], str]:
    convener = await api.ws(headers=await api.login("leader"))
    unit = api.seed.units["QX-DFJD"]  # the sub-district's officials are in scope
    created = await convener.call("session.create", kind="conference", title="会商", unit_id=unit)
    sid = created["session"]["id"]
    await convener.call("session.join", session=sid)
    member_headers = await api.login("dongfeng")
    member = await hello(api, member_headers)
    joined = await member.call("session.join", session=sid)
    assert joined["participant"]["role"] == "member"
    return sid, convener, member, member_headers, joined["participant"]["id"]


async def test_resume_within_the_window_keeps_place_and_role(api_sqlite: Api) -> None:
    api = api_sqlite
    sid, convener, member, headers, pid = await conference(api)
    token = member.hello["data"]["resume_token"]
    assert member.hello["data"]["resume_window_s"] == 2
    await member.close()
    await asyncio.sleep(0.5)
    back = await hello(api, headers, resume=token)
    assert back.hello["type"] == "result", back.hello
    resumed = back.hello["data"]["resumed"]
    assert [r["participant"]["id"] for r in resumed] == [pid]
    assert resumed[0]["participant"]["role"] == "member"
    assert resumed[0]["session"]["id"] == sid
    # still a member after the window has passed: the timer was cancelled
    await asyncio.sleep(2.5)
    s = await session_of(api, sid)
    me = next(p for p in s.participants if p.id == pid)
    assert me.left_at is None
    assert not [e for e in convener.events if e["type"] == "participant.left"]
    # and the resumed connection works in the room both ways
    await back.call("chat.send", session=sid, text="回来了")
    await convener.event("chat.message", session=sid, participant=pid)
    await convener.call("chat.send", session=sid, text="欢迎")
    await back.event("chat.message", session=sid, text="欢迎")


async def test_after_the_window_the_participant_has_left(api_sqlite: Api) -> None:
    api = api_sqlite
    sid, convener, member, headers, pid = await conference(api)
    token = member.hello["data"]["resume_token"]
    dropped_at = time.monotonic()
    await member.close()
    left = await convener.event("participant.left", session=sid, participant=pid, wait=6)
    assert left["reason"] == "disconnected"
    assert time.monotonic() - dropped_at >= 1.9  # not before the 2 s window

    async def recorded() -> bool:
        s = await session_of(api, sid)
        return next(p for p in s.participants if p.id == pid).left_at is not None

    await eventually(recorded)
    s = await session_of(api, sid)
    me = next(p for p in s.participants if p.id == pid)
    assert me.leave_reason == "disconnected"
    late = await hello(api, headers, resume=token)
    assert late.hello["data"]["resumed"] == []
    again = await late.call("session.join", session=sid)
    assert again["participant"]["id"] != pid  # a new participant row, the old one kept


async def test_a_resume_token_of_someone_else_is_refused(api_sqlite: Api) -> None:
    api = api_sqlite
    _sid, _convener, member, _headers, _pid = await conference(api)
    token = member.hello["data"]["resume_token"]
    other = await hello(api, await api.login("hehua"), resume=token)
    assert other.hello["type"] == "error"
    assert other.hello["code"] == "unauthenticated"
    forged = await hello(api, await api.login("dongfeng"), resume=token[:-2] + "xx")
    assert forged.hello["code"] == "unauthenticated"
    # as the web client does: hello again on the same connection, without the token
    plain = await forged.request({"type": "hello", "id": "h2"})
    assert plain["type"] == "result", plain
    assert plain["data"]["resumed"] == []


async def test_replaying_ones_resume_token_moves_the_membership_and_closes_the_older(
    api_sqlite: Api,
) -> None:
    """Issue 13, finding 11: a replayed token bound a second live connection to the membership."""
    api = api_sqlite
    sid, convener, member, headers, pid = await conference(api)
    token = member.hello["data"]["resume_token"]
    second = await hello(api, headers, resume=token)  # the first is still connected
    assert [r["participant"]["id"] for r in second.hello["data"]["resumed"]] == [pid]
    removed = await member.event("session.removed", session=sid)
    assert removed["reason"] == "superseded"
    async with asyncio.timeout(5):
        while True:
            msg = await member.ws.receive()
            if msg.type.name in ("CLOSE", "CLOSED", "CLOSING"):
                break
    assert (msg.data, msg.extra) == (4001, "superseded")  # clients do not reconnect on it
    hub = api.app[keys.HUB]
    await eventually(lambda: _true(len(hub.conns) == 2))  # the convener and the newer one
    await convener.call("chat.send", session=sid, text="还在吗")
    await second.event("chat.message", session=sid, text="还在吗")
    await second.call("chat.send", session=sid, text="在")
    await convener.event("chat.message", session=sid, participant=pid, text="在")


async def _true(value: bool) -> bool:
    return value
