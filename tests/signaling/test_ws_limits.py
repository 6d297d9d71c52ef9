"""Limits: heartbeat, slow clients, message size, message rate."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType

from tests.helpers import Api, T
from tests.signaling.conftest import eventually
from web import keys

HPSQ = "QX-DFJD-HPSQ"


async def test_a_silent_client_is_dropped_within_the_heartbeat_timeout(
    api_with: Callable[..., Awaitable[Api]],
) -> None:
    api = await api_with(heartbeat_timeout_s=1)
    talker = await api.ws(token=api.seed.terminals[HPSQ])
    silent = await api.ws(headers=await api.login("reception"))
    began = time.monotonic()

    async def listen() -> tuple[float, list[str]]:
        # reads (so it answers the WebSocket-level pings) but never says anything
        seen = []
        while True:
            msg = await silent.ws.receive()
            if msg.type is WSMsgType.TEXT:
                seen.append(msg.data)
                continue
            return time.monotonic() - began, seen

    listener = asyncio.create_task(listen())
    # the talker pings every 0.3 s for 2.4 s and stays
    for _ in range(8):
        await talker.call("ping")
        await asyncio.sleep(0.3)
    async with asyncio.timeout(5 * T):
        closed_after, seen = await listener
    assert 0.9 < closed_after < 1.0 + 1.0 * T  # within the timeout (plus scheduling slack)
    assert any("heartbeat_timeout" in m for m in seen)
    assert (await talker.call("ping"))["at"] > 0
    hub = api.app[keys.HUB]
    assert len(hub.conns) == 1


async def test_a_slow_client_is_disconnected_not_buffered(
    api_with: Callable[..., Awaitable[Api]],
) -> None:
    api = await api_with(outbound_queue=8, max_messages_per_s=5000)
    hub = api.app[keys.HUB]
    slow = await api.ws(token=api.seed.terminals[HPSQ])
    sid = (await slow.call("visit.request", category="c"))["session"]["id"]
    officer = await api.ws(headers=await api.login("reception"))
    await officer.call("visit.accept", session=sid)
    conn = next(c for c in hub.conns.values() if c.principal.kind.value == "terminal")
    # the kiosk stops reading: its kernel buffers fill, then its queue of 8 messages
    transport = slow.ws._response.connection.transport  # type: ignore[union-attr]
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    transport.pause_reading()
    text = "请" * 1000
    sent = 0
    async with asyncio.timeout(60 * T):
        while not conn.closed.is_set():
            await officer.call("chat.send", session=sid, text=text)
            sent += 1
    assert conn.close_reason == "slow_client"
    assert conn._queue.qsize() <= 8
    print(f"the kiosk was dropped after {sent} chat messages")

    async def handler_gone() -> bool:
        return conn.id not in hub.conns

    await eventually(handler_gone, wait=3 * T)  # the hub let go at once, it did not wait
    transport.abort()  # the test client would otherwise wait for a close frame
    # the officer is unaffected and the kiosk can come back (a reload)
    assert (await officer.call("ping"))["at"] > 0
    back = await api.ws(token=api.seed.terminals[HPSQ])
    assert back.hello["data"]["visit"]["session"]["id"] == sid


async def test_a_burst_of_requests_is_slowed_down_not_dropped(
    api_with: Callable[..., Awaitable[Api]],
) -> None:
    api = await api_with(outbound_queue=8, max_messages_per_s=5000)
    client = await api.ws(token=api.seed.terminals[HPSQ])
    # 200 requests in one go: far more replies than the queue holds
    await client.ws.send_str("\n".join([]) or "")  # an empty message: bad_json, still a reply
    for i in range(200):
        await client.send({"type": "ping", "id": f"p{i}"})
    replies = []
    async with asyncio.timeout(10 * T):
        while len(replies) < 201:
            replies.append(await client._next())
    assert [r["id"] for r in replies[1:]] == [f"p{i}" for i in range(200)]
    assert replies[0]["code"] == "bad_json"
