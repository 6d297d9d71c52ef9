"""The client side of ``bench/fanout.py``: the media, encoded once and replayed, and the light
viewers and publishers that count frames without decoding (also used by ``fanout_cluster.py``)."""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import math
import os
import time
from typing import Any

import aioice.ice
import av
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.media import hooks
from gateway.media.worker import worker_channel

WORKER = "bench"
CONFIG = RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def loopback() -> None:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


# ----------------------------------------------------------------------------- media, once


def encode_media(seconds: float) -> tuple[list[av.Packet], list[av.Packet]]:
    """VP8 640x480@30 at ~1 Mb/s (keyframe every 2 s) and Opus 20 ms frames."""
    video = av.CodecContext.create("libvpx", "w")
    video.width, video.height, video.pix_fmt = 640, 480, "yuv420p"
    video.bit_rate = 1_000_000
    video.framerate = fractions.Fraction(30, 1)
    video.time_base = fractions.Fraction(1, 30)
    video.gop_size = 60
    video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    frames = int(seconds * 30)
    vpackets: list[av.Packet] = []
    for i in range(frames):
        frame = av.VideoFrame(640, 480, "yuv420p")
        row = bytearray([(i * 2) % 256]) * frame.planes[0].line_size
        x = (i * 8) % 600
        row[x : x + 40] = b"\xff" * 40
        # a noisy moving block makes the rate controller spend the full ~1 Mb/s
        luma = bytearray(bytes(row) * 480)
        noise = os.urandom(160 * 120)
        top = (i * 4) % 360
        for y in range(120):
            start = (top + y) * frame.planes[0].line_size + x // 2
            luma[start : start + 160] = noise[y * 160 : (y + 1) * 160]
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(bytes([(i * 5) % 256]) * frame.planes[1].buffer_size)
        frame.planes[2].update(b"\x80" * frame.planes[2].buffer_size)
        frame.pts = i
        vpackets += video.encode(frame)
    vpackets += video.encode(None)
    audio = av.CodecContext.create("libopus", "w")
    audio.sample_rate, audio.layout, audio.format = 48000, "stereo", "s16"
    audio.bit_rate = 32000
    apackets: list[av.Packet] = []
    tone = bytes(
        b
        for i in range(960)
        for b in int(6000 * math.sin(2 * math.pi * 440 * i / 48000)).to_bytes(
            2, "little", signed=True
        )
        * 2
    )
    for i in range(int(seconds * 50)):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(tone)
        frame.sample_rate = 48000
        frame.pts = i * 960
        apackets += audio.encode(frame)
    return vpackets, apackets


class ReplayTrack(MediaStreamTrack):
    """Replays encoded packets in a loop, in real time; the sender only packetizes.

    A keyframe request (PLI/FIR, :meth:`request_keyframe`) skips to the next pre-encoded
    keyframe, as a browser's encoder answers one with its next frame; like Chrome's, at most
    one request per 300 ms is acted on.
    """

    def __init__(self, kind: str, packets: list[av.Packet], clock: int, step: int) -> None:
        super().__init__()
        self.kind = kind
        self._data = [(bytes(p), p.is_keyframe) for p in packets]
        self._clock, self._step = clock, step
        self._index = 0
        self._skip = 0  # added to the index into the data: frames jumped over for keyframes
        self._start: float | None = None
        self._keyframe_wanted = False
        self._keyframe_at = -1.0
        self._keys = [i for i, (_, key) in enumerate(self._data) if key]

    def request_keyframe(self) -> None:
        if time.monotonic() - self._keyframe_at >= 0.3:
            self._keyframe_wanted = True

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * self._step / self._clock
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        position = (self._index + self._skip) % len(self._data)
        if self._keyframe_wanted and self._keys:
            self._keyframe_wanted = False
            self._keyframe_at = time.monotonic()
            target = next((k for k in self._keys if k >= position), self._keys[0] + len(self._data))
            self._skip += target - position
            position = target % len(self._data)
        data, key = self._data[position]
        packet = av.Packet(data)
        packet.pts = self._index * self._step
        packet.time_base = fractions.Fraction(1, self._clock)
        packet.is_keyframe = key
        self._index += 1
        return packet


# ----------------------------------------------------------------------------- clients


class Link:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.handlers: dict[str, Any] = {}
        self.task = asyncio.create_task(self._read())

    def send(self, **item: Any) -> None:
        self.writer.write((json.dumps(item) + "\n").encode())

    async def _read(self) -> None:
        while line := await self.reader.readline():
            item = json.loads(line)
            handler = self.handlers.get(item["channel"])
            if handler is not None:
                try:
                    await handler(item["message"])
                except Exception as exc:  # e.g. a late re-offer for a closed viewer
                    logging.debug("client handler failed: %s", exc)


class FrameCounter:
    """Counts complete video frames at the RTP level, in place of aiortc's receive path.

    Installed with the worker's own fast receive path (``hooks.install_fast_receive`` with
    ``on_rtp``): it sees each packet after SRTP verification and decryption, in the socket's
    callback, and counts a frame when its marker packet arrives with no sequence gap since the
    previous frame ended (every packet of the frame was delivered). No depacketizing, no jitter
    buffer, no decoding, and no RTCP of its own: aiortc's receiver would send a REMB for nearly
    every packet (100 such viewers cost the worker more than forwarding to them), where a
    browser sends its receiver reports about once a second.
    """

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.pc = pc
        self.video_payload_types: set[int] = set()
        self.frames = 0
        self.first_at: float | None = None  # monotonic time of the first complete frame
        self._next_seq: int | None = None
        self._intact = False

    async def __call__(self, data: bytes, arrival_time_ms: int) -> None:
        self.count(data, 0.0)

    def count(self, data: bytes, now: float) -> None:
        """Count one decrypted RTP packet (``hooks.install_fast_receive``'s ``on_rtp``)."""
        if not self.video_payload_types and self.pc.remoteDescription is not None:
            self.video_payload_types = video_payload_types(self.pc.remoteDescription.sdp)
        if len(data) < 12 or (data[1] & 0x7F) not in self.video_payload_types:
            return
        seq = (data[2] << 8) | data[3]
        if self._next_seq is not None and seq != self._next_seq:
            self._intact = False  # a packet of this frame is missing (or came out of order)
        self._next_seq = (seq + 1) & 0xFFFF
        if data[1] & 0x80:  # marker: the frame's last packet
            if self._intact:
                self.frames += 1
                if self.first_at is None:
                    self.first_at = time.monotonic()
            self._intact = True  # the next frame starts on a boundary


def video_payload_types(sdp: str) -> set[int]:
    return {
        int(line.split()[0].split(":")[1])
        for line in sdp.splitlines()
        if line.startswith("a=rtpmap:") and " VP8/" in line
    }


class Viewer:
    """A client peer; counts encoded video frames without decoding.

    ``light`` (the default): frames are counted at the RTP level (:class:`FrameCounter`) and
    published tracks go out through the worker's own lean send loop, so one client process can
    stand in for a hundred browsers; otherwise aiortc's receiver assembles frames (passthrough).
    """

    def __init__(self, link: Link, room: str, peer: str, light: bool = True) -> None:
        self.link, self.room, self.peer = link, room, peer
        self.light = light
        self.pc = RTCPeerConnection(CONFIG)
        self.counter: FrameCounter | None = None
        self.offered_at = 0.0
        #: monotonic times of a join's stages: the worker's answer, ICE+DTLS up, its re-offer
        self.stages: dict[str, float] = {}
        self._frames = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self.on_track)
        self.pc.on("connectionstatechange", self.on_state)
        self.channel = f"bench.{room}.{peer}"

    @property
    def video_frames(self) -> int:
        return self.counter.frames if self.counter is not None else self._frames

    def on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.stages.setdefault("connected", time.monotonic())

    def on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        if self.light:
            return  # counted by self.counter, below aiortc's receivers
        hooks.install_passthrough(transceiver.receiver)
        self.tasks.append(asyncio.create_task(self.count(track)))

    async def count(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                if track.kind == "video":
                    self._frames += 1
        except MediaStreamError:
            pass

    def count_frames(self) -> None:
        """Light viewers: count frames as packets are decrypted, in the socket callback (the
        worker's own fast receive path); call after ``setLocalDescription``."""
        if self.light and self.counter is None:
            self.counter = FrameCounter(self.pc)
            hooks.install_fast_receive(self.pc, on_rtp=self.counter.count)

    def add_tracks(self, tracks: list[MediaStreamTrack]) -> None:
        for track in tracks:
            sender = self.pc.addTrack(track)
            if self.light:
                hooks.install_packetizer(sender, "vp8" if track.kind == "video" else "opus")
            if isinstance(track, ReplayTrack) and track.kind == "video":
                hooks.on_keyframe_request(sender, track.request_keyframe)

    def to_worker(self, type_: str, **fields: Any) -> None:
        self.link.send(
            op="publish",
            channel=worker_channel(WORKER),
            message={"type": type_, "session_id": self.room, "peer": self.peer, **fields},
        )

    async def join(self, tracks: list[MediaStreamTrack], subscribe: list[str]) -> None:
        self.link.handlers[self.channel] = self.on_message
        self.link.send(op="subscribe", channel=self.channel)
        await asyncio.sleep(0.05)
        self.add_tracks(tracks)
        if not tracks:
            self.pc.createDataChannel("c")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.count_frames()
        self.offered_at = time.monotonic()
        self.to_worker("peer.offer", sdp=self.pc.localDescription.sdp, reply_to=self.channel)
        for publisher in subscribe:
            self.to_worker("peer.subscribe", publisher=publisher)

    async def on_message(self, message: dict[str, Any]) -> None:
        self.stages.setdefault(message["type"], time.monotonic())
        if message["type"] == "peer.answer":
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="answer")
            )
        elif message["type"] == "peer.offer":
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=message["sdp"], type="offer")
            )
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.to_worker("peer.answer", sdp=self.pc.localDescription.sdp)

    async def join_relay(self, tracks: list[MediaStreamTrack]) -> None:
        done = asyncio.Event()

        async def on_answer(message: dict[str, Any]) -> None:
            if message["peer"] == self.peer:
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=message["sdp"], type="answer")
                )
                done.set()

        self.link.handlers["relay"] = on_answer
        for track in tracks:
            self.pc.addTrack(track)
        if not tracks:
            self.pc.addTransceiver("video", "recvonly")
            self.pc.addTransceiver("audio", "recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.count_frames()
        self.link.send(
            op="relay.offer", peer=self.peer, sdp=self.pc.localDescription.sdp, publish=bool(tracks)
        )
        await done.wait()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


async def measure(link: Link, phase: str, viewers: list[Viewer], seconds: float) -> list[float]:
    deadline = time.monotonic() + 30
    # polling: frames are counted by many tasks, a shared Event would cost more than it saves
    while any(v.video_frames == 0 for v in viewers) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # settle
    start = [v.video_frames for v in viewers]
    link.send(op="mark", name=f"{phase}_start")
    t0, cpu0 = time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    link.send(op="mark", name=f"{phase}_end")
    elapsed = time.monotonic() - t0
    CLIENT_CPU[phase] = (time.process_time() - cpu0) / elapsed * 100
    return [(v.video_frames - s) / elapsed for v, s in zip(viewers, start, strict=True)]


#: this process's CPU per measured phase, % of a core
CLIENT_CPU: dict[str, float] = {}


def replay_tracks(media: tuple[list[av.Packet], list[av.Packet]]) -> list[MediaStreamTrack]:
    vpackets, apackets = media
    return [ReplayTrack("video", vpackets, 90000, 3000), ReplayTrack("audio", apackets, 48000, 960)]
