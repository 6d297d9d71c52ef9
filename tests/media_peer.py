"""An aiortc participant that talks to the real hub over /ws, as the browser apps do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aioice.ice
import av
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from tests.helpers import T
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
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.events: list[dict[str, Any]] = []
        self.tracks: dict[str, dict[str, Any]] = {}  # mid → {publisher, kind}
        self.frames: dict[str, int] = {}  # mid → decoded frames
        self.session = ""
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._n = 0
        self._tasks: list[asyncio.Task[None]] = [asyncio.create_task(self._read())]
        self.pc.on("track", self._on_track)

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
            if data["type"] == "media.answer":
                await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "answer"))
            elif data["type"] == "media.offer":
                await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], "offer"))
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                await self.ws.send_str(
                    json.dumps(
                        {
                            "type": "media.answer",
                            "session": self.session,
                            "sdp": self.pc.localDescription.sdp,
                        }
                    )
                )

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        mid = transceiver.mid or "?"
        self.frames[mid] = 0
        self._tasks.append(asyncio.create_task(self._consume(track, mid)))

    async def _consume(self, track: MediaStreamTrack, mid: str) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame | av.AudioFrame)
                self.frames[mid] += 1

    async def publish(self, session: str) -> dict[str, Any]:
        """Offer a moving pattern and a tone; returns the hub's reply (names the worker)."""
        self.session = session
        self.pc.addTrack(PatternVideoTrack())
        self.pc.addTrack(ToneAudioTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return await self.request("media.offer", session=session, sdp=self.pc.localDescription.sdp)

    def frames_from(self, participant: str, kind: str) -> int:
        return sum(
            n
            for mid, n in self.frames.items()
            if self.tracks.get(mid, {}).get("publisher") == participant
            and self.tracks[mid]["kind"] == kind
        )

    def event(self, etype: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["type"] == etype), None)

    async def close(self) -> None:
        await self.pc.close()
        await self.ws.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)
