"""An aiortc participant that talks to the real hub over /ws, as the browser apps do."""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import json
import math
import time
from pathlib import Path
from typing import Any

import aioice.ice
import av
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from config.settings import Settings
from records.store import Store
from tests.helpers import PASSWORD, Seed, T, make_settings, seed_store
from tests.media.conftest import PatternVideoTrack, ToneAudioTrack


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice skips 127.0.0.1 when gathering; offer only it (MEDIA.md)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


class Peer:
    """One participant: a WebSocket to the hub and an aiortc peer connection."""

    def __init__(self, ws: ClientWebSocketResponse, name: str) -> None:
        self.ws = ws
        self.name = name
        self.pc = self._new_pc()
        self.events: list[dict[str, Any]] = []
        self.tracks: dict[str, dict[str, Any]] = {}  # mid → {publisher, kind}
        self.frames: dict[str, int] = {}  # mid → decoded frames
        self.session = ""
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._n = 0
        self._sdp: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._negotiate()),
        ]

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        pc.on("track", self._on_track)
        return pc

    async def request(self, mtype: str, **fields: Any) -> dict[str, Any]:
        self._n += 1
        rid = f"{self.name}{self._n}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        await self.ws.send_str(json.dumps({"type": mtype, "id": rid, **fields}))
        async with asyncio.timeout(10 * T):
            reply = await fut
        assert reply["type"] == "result", reply
        data: dict[str, Any] = reply["data"]
        return data

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is not WSMsgType.TEXT:
                break
            data = json.loads(msg.data)
            if data.get("type") in ("result", "error") and data.get("id") in self._replies:
                self._replies.pop(data["id"]).set_result(data)
                continue
            self.events.append(data)
            if data["type"] in ("media.answer", "media.offer"):
                self.tracks.update({t["mid"]: t for t in data.get("tracks", [])})
                # negotiated in order by one task, so replies to requests never wait on it
                self._sdp.put_nowait(data)

    async def _negotiate(self) -> None:
        while True:
            data = await self._sdp.get()
            pc = self.pc
            try:
                if data["type"] == "media.answer":
                    await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
                elif data["type"] == "media.offer":
                    await pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                    await self.ws.send_str(
                        json.dumps(
                            {
                                "type": "media.answer",
                                "session": self.session,
                                "sdp": pc.localDescription.sdp,
                            }
                        )
                    )
            except InvalidStateError:
                if pc is self.pc:
                    raise
                # meant for the connection reconnect() replaced: as an app, ignore it

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid or "?"
        self.frames[mid] = 0
        self._tasks.append(asyncio.create_task(self._consume(track, mid, self.pc)))

    async def _consume(self, track: MediaStreamTrack, mid: str, pc: RTCPeerConnection) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame | av.AudioFrame)
                if pc is not self.pc:
                    return  # replaced by reconnect(): its mids are the new connection's
                self.frames[mid] += 1

    async def publish(self, session: str, *tracks: MediaStreamTrack) -> dict[str, Any]:
        """Offer ``tracks`` (default: a moving pattern and a tone); returns the hub's reply."""
        self.session = session
        for track in tracks or (PatternVideoTrack(), ToneAudioTrack()):
            self.pc.addTrack(track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return await self.request("media.offer", session=session, sdp=self.pc.localDescription.sdp)

    async def watch(self, session: str) -> dict[str, Any]:
        """Offer to receive only (a data channel, as a training viewer's browser does)."""
        self.session = session
        self.pc.createDataChannel("control")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return await self.request("media.offer", session=session, sdp=self.pc.localDescription.sdp)

    async def reconnect(self, *tracks: MediaStreamTrack, watch: bool = False) -> dict[str, Any]:
        """Offer again from a new peer connection (``restart``), as media.js does after
        ``media.lost`` or a failed connection; returns the hub's reply. ``watch``: a viewer's
        connection, receiving only."""
        old, self.pc = self.pc, self._new_pc()  # swapped first: the negotiator sees only one
        self.tracks.clear()
        self.frames.clear()
        await old.close()
        if watch:
            self.pc.createDataChannel("control")
        for track in () if watch else tracks or (PatternVideoTrack(), ToneAudioTrack()):
            self.pc.addTrack(track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return await self.request(
            "media.offer", session=self.session, sdp=self.pc.localDescription.sdp, restart=True
        )

    def frames_from(self, participant: str, kind: str) -> int:
        return sum(
            n
            for mid, n in self.frames.items()
            if self.tracks.get(mid, {}).get("publisher") == participant
            and self.tracks[mid]["kind"] == kind
        )

    def event(self, etype: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["type"] == etype), None)

    def count(self, etype: str) -> int:
        return sum(1 for e in self.events if e["type"] == etype)

    async def close(self) -> None:
        await self.pc.close()
        await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def video_both_ways(
    a: Peer, b: Peer, a_id: str, b_id: str, what: str, *, frames: int = 30, within: float = 20.0
) -> None:
    """Wait until ``a`` decoded ``frames`` video frames of ``b`` and ``b`` as many of ``a``."""
    await until(
        lambda: a.frames_from(b_id, "video") > frames and b.frames_from(a_id, "video") > frames,
        within * T,
        what,
    )


async def until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


class FlashBeepClock:
    """Shared start time of a source that flashes and beeps at the same instants."""

    EVENTS_EVERY_S = 1.5
    FIRST_EVENT_S = 1.0
    LENGTH_S = 0.1

    def __init__(self) -> None:
        self.start = time.monotonic()

    def in_event(self, t: float) -> bool:
        if t < self.FIRST_EVENT_S:
            return False
        return (t - self.FIRST_EVENT_S) % self.EVENTS_EVERY_S < self.LENGTH_S


class FlashVideoTrack(MediaStreamTrack):
    """320x240 at 30 fps: dark, bright for 100 ms at each event."""

    kind = "video"

    def __init__(self, clock: FlashBeepClock) -> None:
        super().__init__()
        self.clock = clock
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        self._count += 1
        due = self.clock.start + self._count / 30
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t = time.monotonic() - self.clock.start
        frame = av.VideoFrame(320, 240, "yuv420p")
        luma = 235 if self.clock.in_event(t) else 40
        for n, plane in enumerate(frame.planes):
            plane.update(bytes([luma if n == 0 else 128]) * plane.buffer_size)
        frame.pts = int(t * 90000)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class BeepAudioTrack(MediaStreamTrack):
    """48 kHz mono: silence, a 1 kHz beep for 100 ms at each event."""

    kind = "audio"

    def __init__(self, clock: FlashBeepClock) -> None:
        super().__init__()
        self.clock = clock
        self._count = 0

    async def recv(self) -> av.AudioFrame:
        self._count += 1
        due = self.clock.start + self._count * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        t0 = (self._count - 1) * 0.02
        samples = array.array(
            "h",
            (
                int(16000 * math.sin(2 * math.pi * 1000 * (t0 + i / 48000)))
                if self.clock.in_event(t0 + i / 48000)
                else 0
                for i in range(960)
            ),
        )
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = 48000
        frame.pts = (self._count - 1) * 960
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


async def media_app(
    aiohttp_client: Any, tmp_path: Path, **sections: dict[str, Any]
) -> tuple[Any, Settings, Seed]:
    """The real app with its in-process media worker on a seeded SQLite file."""
    from gateway.app import create_app  # noqa: PLC0415

    sections.setdefault("media", {"in_process_worker": True})
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}", **sections)
    store = Store(settings.database_url)
    await store.start(migrate=True)
    seed = await seed_store(store)
    await store.close()
    media_worker = bool(sections["media"].get("in_process_worker", True))
    client = await aiohttp_client(create_app(settings, media_worker=media_worker))
    return client, settings, seed


async def login_headers(client: Any, username: str) -> dict[str, str]:
    """Cookie and CSRF headers of a seeded official (the client keeps no cookie itself)."""
    resp = await client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    client.session.cookie_jar.clear()
    return {
        "Cookie": f"pg_session={resp.cookies['pg_session'].value}",
        "X-CSRF-Token": body["csrf_token"],
    }
