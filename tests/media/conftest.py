"""Fixtures for media tests: loopback ICE, the in-memory bus, a worker, and aiortc clients.

``MediaClient`` plays both a participant's browser (an aiortc peer connection) and the hub's
relay for it: it sends ``peer.*`` messages to the worker over the bus and applies what comes
back on its reply channel.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aioice.ice
import av
import pytest
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.media import hooks
from gateway.media.worker import MediaWorker, worker_channel
from signaling.bus import MemoryBus
from signaling.bus_messages import WORKER_COMMANDS, RoomOpen

WORKER_ID = "w-test"


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice skips 127.0.0.1 when gathering; offer only it (MEDIA.md)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])


class DecodeErrors(logging.Handler):
    """Collects aiortc's 'failed to decode' warnings (decoding errors never raise)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "decode" in text:
            self.messages.append(text)


@pytest.fixture
def decode_errors() -> AsyncIterator[DecodeErrors] | Any:
    handler = DecodeErrors()
    log = logging.getLogger("aiortc.rtcrtpreceiver")
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)


def _pad(row: bytearray, plane: Any) -> bytes:
    return (bytes(row) + b"\x00" * (plane.line_size - len(row))) * plane.height


# 100 ms of a 440 Hz tone (a whole number of periods at 48 kHz: 44), s16 little-endian
_TONE = array.array(
    "h", (int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(4800))
).tobytes()


class PatternVideoTrack(MediaStreamTrack):
    """A moving 320x240 pattern at 30 fps (small, so the clients' encoders stay cheap)."""

    kind = "video"

    def __init__(self, fps: int = 30) -> None:
        super().__init__()
        self._fps = fps
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        self._count += 1
        wait = self._start + self._count / self._fps - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.VideoFrame(320, 240, "yuv420p")
        x = (self._count * 4) % 304
        row = bytearray([(self._count * 3) % 256]) * 320
        row[x : x + 16] = b"\xff" * 16
        y_plane = frame.planes[0]
        y_plane.update(bytes(row) * 240 if y_plane.line_size == 320 else _pad(row, y_plane))
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = self._count * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """20 ms frames of a 440 Hz tone, 48 kHz mono s16."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        self._count += 1
        wait = self._start + self._count * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(_TONE[(self._count % 5) * 1920 : (self._count % 5) * 1920 + 1920])
        frame.sample_rate = 48000
        frame.pts = self._count * 960
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


class Received:
    """What one client saw on one of its receiving transceivers."""

    def __init__(self, mid: str, kind: str) -> None:
        self.mid = mid
        self.kind = kind
        self.frames = 0
        self.first_at: float | None = None
        self.sizes: set[tuple[int, int]] = set()
        self.ended = False


class MediaClient:
    """An aiortc participant plus the hub's relaying for it.

    Args:
        bus: the bus.
        room: room id.
        peer_id: participant id.
        decode: decode received media (``False``: count encoded frames via the passthrough hook).
        read: consume received tracks at all (``False`` simulates a viewer that stops reading).
        worker_id: the worker it talks to.
    """

    def __init__(
        self,
        bus: MemoryBus,
        room: str,
        peer_id: str,
        *,
        decode: bool = True,
        read: bool = True,
        worker_id: str = WORKER_ID,
    ) -> None:
        self.bus = bus
        self.worker_id = worker_id
        self.room = room
        self.id = peer_id
        self.decode = decode
        self.read = read
        self.channel = f"test.hub.{room}.{peer_id}"
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.messages: list[dict[str, Any]] = []
        self.track_map: dict[str, dict[str, Any]] = {}
        self.received: dict[str, Received] = {}
        self.offers_from_worker = 0
        #: worker offers to leave unanswered, as if lost on the way (then counted, not applied)
        self.ignore_offers = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self.pc.on("track", self._on_track)

    async def start(self) -> None:
        sub = await self.bus.subscribe(self.channel)
        self._tasks.append(asyncio.create_task(self._read(sub)))

    async def send(self, message_type: str, **fields: Any) -> None:
        await self.bus.publish(
            worker_channel(self.worker_id),
            WORKER_COMMANDS.validate_python(
                {"type": message_type, "session_id": self.room, "peer": self.id, **fields}
            ),
        )

    async def offer(
        self, *tracks: MediaStreamTrack, munge: Callable[[str], str] | None = None
    ) -> None:
        """Publish ``tracks`` (or only a data channel) with the client's first offer.

        ``munge`` rewrites the offer before it is applied (e.g. to a browser's numbering).
        """
        for track in tracks:
            self.pc.addTrack(track)
        if not tracks:
            self.pc.createDataChannel("control")
        offer = await self.pc.createOffer()
        sdp = munge(offer.sdp) if munge is not None else offer.sdp
        await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self.send("peer.offer", sdp=self.pc.localDescription.sdp, reply_to=self.channel)

    async def _read(self, sub: Any) -> None:
        try:
            async for message in sub:
                self.messages.append(message)
                kind = message["type"]
                if kind in ("peer.answer", "peer.offer"):
                    self.track_map = {t["mid"]: t for t in message.get("tracks", [])}
                if kind == "peer.answer":
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=message["sdp"], type="answer")
                    )
                elif kind == "peer.offer" and self.ignore_offers > 0:
                    self.ignore_offers -= 1
                    self.offers_from_worker += 1
                elif kind == "peer.offer":
                    self.offers_from_worker += 1
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=message["sdp"], type="offer")
                    )
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self.send("peer.answer", sdp=self.pc.localDescription.sdp)
                self._changed.set()
        finally:
            await sub.close()

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        if not self.decode:
            hooks.install_passthrough(transceiver.receiver)
        received = Received(transceiver.mid or "?", track.kind)
        self.received[received.mid] = received
        if self.read:
            self._tasks.append(asyncio.create_task(self._consume(track, received)))

    async def _consume(self, track: MediaStreamTrack, received: Received) -> None:
        try:
            while True:
                frame = await track.recv()
                received.frames += 1
                if received.first_at is None:
                    received.first_at = time.monotonic()
                if isinstance(frame, av.VideoFrame):
                    received.sizes.add((frame.width, frame.height))
                self._changed.set()
        except MediaStreamError:
            received.ended = True
            self._changed.set()

    def frames_from(self, publisher: str, kind: str) -> int:
        return sum(
            self.received[mid].frames
            for mid, info in self.track_map.items()
            if info["publisher"] == publisher and info["kind"] == kind and mid in self.received
        )

    def of_type(self, message_type: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == message_type]

    async def wait_for(self, condition: Callable[[], bool], within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.id}: condition not met in {within} s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.1))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    memory_bus = MemoryBus()
    yield memory_bus
    await memory_bus.close()


class ListSink:
    """A RoomSink that keeps what it was given."""

    def __init__(self, room: str, codec: str) -> None:
        self.room = room
        self.codec = codec
        self.packets: list[tuple[str, str, av.Packet, float]] = []
        self.handed_at: list[float] = []  # time.time() of each on_packet call
        self.ended: list[tuple[str, str]] = []
        self.closed = False

    def on_packet(self, peer: str, kind: str, packet: av.Packet, arrival_wallclock: float) -> None:
        self.packets.append((peer, kind, packet, arrival_wallclock))
        self.handed_at.append(time.time())

    def on_track_end(self, peer: str, kind: str) -> None:
        self.ended.append((peer, kind))

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def sinks() -> list[ListSink]:
    return []


@pytest.fixture
async def worker(
    loopback: None, bus: MemoryBus, sinks: list[ListSink]
) -> AsyncIterator[MediaWorker]:
    def sink_factory(room: str, codec: str, meta: dict[str, Any]) -> ListSink:
        sinks.append(ListSink(room, codec))
        return sinks[-1]

    media_worker = MediaWorker(
        bus, WORKER_ID, ice_loopback_only=True, stats_interval_s=0.5, sink_factory=sink_factory
    )
    await media_worker.start()
    yield media_worker
    await media_worker.close()


ClientFactory = Callable[..., Awaitable[MediaClient]]


@pytest.fixture
async def client(worker: MediaWorker, bus: MemoryBus) -> AsyncIterator[ClientFactory]:
    """Makes started ``MediaClient``s, closed at the end of the test."""
    clients: list[MediaClient] = []

    async def make(room: str, peer_id: str, **options: Any) -> MediaClient:
        media_client = MediaClient(bus, room, peer_id, **options)
        await media_client.start()
        clients.append(media_client)
        return media_client

    yield make
    for media_client in clients:
        await media_client.close()


async def open_room(bus: MemoryBus, room: str, codec: str = "vp8", record: bool = False) -> None:
    await bus.publish(
        worker_channel(WORKER_ID),
        RoomOpen(session_id=room, codec=codec, record=record),
    )


@pytest.fixture
def room_opener(bus: MemoryBus) -> Callable[..., Awaitable[None]]:
    async def opener(room: str, codec: str = "vp8", record: bool = False) -> None:
        await open_room(bus, room, codec, record)

    return opener


@pytest.fixture
def media_sources() -> tuple[type[PatternVideoTrack], type[ToneAudioTrack]]:
    return PatternVideoTrack, ToneAudioTrack
