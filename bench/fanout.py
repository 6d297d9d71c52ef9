"""Fan-out cost of the forwarding worker versus a decode/re-encode relay, in the same run.

Two processes, so the client side's cost stays out of the figures:

* this process (the "worker side") runs a MediaWorker on a MemoryBus, a decode/re-encode relay
  (aiortc MediaRelay, the baseline) and a tiny line-JSON bridge that lets the other process
  publish to and subscribe on the bus;
* a child process (``--role clients``) runs the publisher (VP8 640x480@30 ~1 Mb/s and Opus,
  encoded ONCE into memory, then replayed with correct timing) and the viewers, which count
  encoded frames without decoding (the passthrough hook on the client side too).

CPU is this process's CPU time over the measuring window, in % of one core.

    python bench/fanout.py --viewers 20 --seconds 10
    python bench/fanout.py --rooms 10 --seconds 10      # K concurrent 1:1 rooms
    python bench/fanout.py --workers 3 --viewers 60     # cascaded over 3 worker processes
                                                        # on Redis (bench/fanout_cluster.py)
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = os.path.abspath(__file__)
sys.path.insert(0, os.path.dirname(os.path.dirname(SCRIPT)))

import aioice.ice  # noqa: E402
import av  # noqa: E402
from aiortc import (  # noqa: E402
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay  # noqa: E402
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402

from gateway.media import hooks  # noqa: E402
from gateway.media.worker import MediaWorker, worker_channel  # noqa: E402
from recorder.room import RoomRecorder  # noqa: E402
from signaling.bus import MemoryBus  # noqa: E402
from signaling.bus_messages import WORKER_COMMANDS  # noqa: E402

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
    """Replays encoded packets in a loop, in real time; the sender only packetizes."""

    def __init__(self, kind: str, packets: list[av.Packet], clock: int, step: int) -> None:
        super().__init__()
        self.kind = kind
        self._data = [(bytes(p), p.is_keyframe) for p in packets]
        self._clock, self._step = clock, step
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * self._step / self._clock
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        data, key = self._data[self._index % len(self._data)]
        packet = av.Packet(data)
        packet.pts = self._index * self._step
        packet.time_base = fractions.Fraction(1, self._clock)
        packet.is_keyframe = key
        self._index += 1
        return packet


# ----------------------------------------------------------------------------- bridge


class Bridge:
    """Line-JSON link between the client process and this process's bus."""

    def video_sent(self) -> dict[int, int]:
        """Frames handed to each video subscriber's sender, by track identity."""
        if self.worker is None:
            return {}
        return {
            id(slot.track): slot.track.sent
            for room in self.worker.rooms.values()
            for peer in room.peers.values()
            for slot in peer.slots
            if slot.track.kind == "video" and slot.feed is not None
        }

    def upstream_losses(self) -> dict[str, int]:
        """What the worker's receivers repaired or gave up, over all published video tracks."""
        totals = {"nacks_sent": 0, "skipped_gaps": 0, "dropped_frames": 0}
        if self.worker is None:
            return totals
        for room in self.worker.rooms.values():
            for peer in room.peers.values():
                for transceiver in peer.pc.getTransceivers():
                    counters = hooks.receive_counters(transceiver.receiver)
                    if transceiver.kind == "video" and counters:
                        for key in totals:
                            totals[key] += counters[key]
        return totals

    def __init__(self, bus: MemoryBus, relay: RelayServer) -> None:
        self.bus, self.relay = bus, relay
        self.marks: dict[str, tuple[float, float]] = {}
        #: per mark: video frames the worker handed to each subscriber's sender so far
        self.sent: dict[str, dict[int, int]] = {}
        self.losses: dict[str, dict[str, int]] = {}
        self.worker: MediaWorker | None = None
        self.reports: list[dict[str, Any]] = []
        self.done = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.lag = LagMonitor()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def forward(channel: str) -> None:
            sub = await self.bus.subscribe(channel)
            async for message in sub:
                if writer.is_closing():  # the client process is gone (the bench is ending)
                    break
                writer.write((json.dumps({"channel": channel, "message": message}) + "\n").encode())

        while line := await reader.readline():
            item = json.loads(line)
            op = item["op"]
            if op == "publish":
                # the client process speaks the worker's bus protocol (WorkerCommand)
                command = WORKER_COMMANDS.validate_python(item["message"])
                await self.bus.publish(item["channel"], command)
            elif op == "subscribe":
                self.tasks.append(asyncio.create_task(forward(item["channel"])))
            elif op == "relay.offer":
                answer = await self.relay.offer(
                    item["peer"], item["sdp"], item.get("publish", False)
                )
                writer.write(
                    (
                        json.dumps(
                            {"channel": "relay", "message": {"peer": item["peer"], "sdp": answer}}
                        )
                        + "\n"
                    ).encode()
                )
            elif op == "mark":
                self.marks[item["name"]] = (time.monotonic(), time.process_time())
                self.sent[item["name"]] = self.video_sent()
                self.losses[item["name"]] = self.upstream_losses()
                if item["name"].endswith("start"):
                    self.lag.reset()
                else:
                    self.marks[item["name"] + "_lag"] = self.lag.figures()
            elif op == "report":
                self.reports.append(item)
                self.done.set()
        self.done.set()


class LagMonitor:
    def __init__(self) -> None:
        self.samples: list[float] = []

    def reset(self) -> None:
        self.samples = []

    async def run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(0.01)
            self.samples.append(max(0.0, time.monotonic() - start - 0.01) * 1000)

    def figures(self) -> tuple[float, float]:
        if not self.samples:
            return 0.0, 0.0
        ordered = sorted(self.samples)
        return ordered[int(len(ordered) * 0.99) - 1 if len(ordered) > 1 else 0], ordered[-1]


class RelayServer:
    """The baseline: aiortc's own way, decode once, MediaRelay, re-encode per viewer."""

    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.sinks: list[asyncio.Task[None]] = []

    async def offer(self, peer: str, sdp: str, publish: bool) -> str:
        pc = RTCPeerConnection(CONFIG)
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks[track.kind] = track

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not publish:
            for kind in ("video", "audio"):
                pc.addTrack(self.relay.subscribe(self.tracks[kind], buffered=False))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        self.pcs.clear()


async def worker_side(args: argparse.Namespace) -> None:
    loopback()
    bus = MemoryBus()
    recordings = Path(tempfile.mkdtemp(prefix="fanout-rec-"))
    recorders: list[RoomRecorder] = []

    def sink_factory(room: str, codec: str, meta: dict[str, Any]) -> Any:
        recorder = RoomRecorder(recordings, room, codec, meta)
        recorder.start()
        recorders.append(recorder)
        return recorder

    worker = MediaWorker(
        bus, WORKER, ice_loopback_only=True, sink_factory=sink_factory if args.record else None
    )
    await worker.start()
    relay = RelayServer()
    bridge = Bridge(bus, relay)
    bridge.worker = worker
    lag_task = asyncio.create_task(bridge.lag.run())
    server = await asyncio.start_server(bridge.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    child = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            SCRIPT,
            "--role",
            "clients",
            "--port",
            str(port),
            "--viewers",
            str(args.viewers),
            "--rooms",
            str(args.rooms),
            "--seconds",
            str(args.seconds),
            "--relay-viewers",
            str(args.relay_viewers),
            *(["--record"] if args.record else []),
            *(["--full-viewers"] if args.full_viewers else []),
        ]
    )
    try:
        await asyncio.wait_for(bridge.done.wait(), args.seconds * 3 + 120)
    finally:
        await child.wait()
        lag_task.cancel()
        for task in bridge.tasks:
            task.cancel()
        server.close()
        await relay.close()
        await worker.close()
        await bus.close()
    if recorders:

        def summary() -> str:
            files = list(recordings.glob("*/*/*.webm"))  # <session>/<run>/<file>
            size = sum(f.stat().st_size for f in files)
            shutil.rmtree(recordings, ignore_errors=True)
            return f"recorded {len(files)} files, {size / 1e6:.1f} MB"

        print(await asyncio.to_thread(summary))
    report(args, bridge)


def worker_sent_fps(bridge: Bridge, phase: str) -> list[float]:
    """Frames per second the worker itself sent to each video subscriber (the clients' own
    receive rate is capped by the client process when it cannot keep up with N viewers)."""
    (t0, _), (t1, _) = bridge.marks[f"{phase}_start"], bridge.marks[f"{phase}_end"]
    before, after = bridge.sent[f"{phase}_start"], bridge.sent[f"{phase}_end"]
    return [(after[k] - before.get(k, 0)) / (t1 - t0) for k in after]


def cpu_pct(marks: dict[str, Any], phase: str) -> float:
    (t0, c0), (t1, c1) = marks[f"{phase}_start"], marks[f"{phase}_end"]
    return (c1 - c0) / (t1 - t0) * 100


def report(args: argparse.Namespace, bridge: Bridge) -> None:
    if not bridge.reports:
        print("clients failed; no report")
        sys.exit(1)
    result = bridge.reports[-1]
    marks = bridge.marks
    fps = result["sfu_fps"]
    sfu_cpu = cpu_pct(marks, "sfu")
    streams = len(fps)
    lag99, lagmax = marks["sfu_end_lag"]
    sent = worker_sent_fps(bridge, "sfu")
    print(
        f"forwarding worker: {streams} video streams delivered, worker CPU {sfu_cpu:.1f}% of a core"
    )
    if sent:
        print(
            f"  worker sent per viewer: fps min {min(sent):.1f} mean {statistics.mean(sent):.1f}"
            " (frames handed to each viewer's sender; below: complete frames each client got)"
        )
    print(
        f"  fps min {min(fps):.1f} mean {statistics.mean(fps):.1f}; "
        f"loop lag p99 {lag99:.1f} ms max {lagmax:.1f} ms"
    )
    before, after = bridge.losses.get("sfu_start", {}), bridge.losses.get("sfu_end", {})
    losses = {k: after[k] - before.get(k, 0) for k in after}
    if losses:
        print(
            f"  published video received: {losses['nacks_sent']} NACKs sent, "
            f"{losses['skipped_gaps']} gaps given up, {losses['dropped_frames']} frames dropped "
            "awaiting a keyframe"
        )
    if "client_cpu_pct" in result:
        client_cpu = result["client_cpu_pct"]
        print(f"  client process (publishers and counting viewers): {client_cpu:.1f}%")
    line = (
        f"BENCH fanout viewers={args.viewers if not args.rooms else 0} rooms={args.rooms} "
        f"streams={streams} cpu_per_viewer_pct={sfu_cpu / streams:.2f} "
        f"fps_min={min(fps):.1f} fps_mean={statistics.mean(fps):.1f} loop_lag_ms={lag99:.1f}"
        f" worker_sent_fps_min={min(sent) if sent else 0:.1f}"
    )
    joins = result.get("join_to_video_s") or []
    if joins:
        p50, worst = joins[len(joins) // 2], joins[-1]
        print(f"  offer to first complete video frame: p50 {p50:.2f} s, max {worst:.2f} s")
        line += f" join_to_video_p50_s={p50:.2f} join_to_video_max_s={worst:.2f}"
    if not args.rooms:
        line += " workers=1"
    if "relay_fps" in result:
        relay_cpu = cpu_pct(marks, "relay")
        rfps = result["relay_fps"]
        per = relay_cpu / len(rfps)
        print(
            f"decode/re-encode relay: {len(rfps)} viewers, CPU {relay_cpu:.1f}% "
            f"({per:.1f}%/viewer), fps min {min(rfps):.1f} mean {statistics.mean(rfps):.1f}"
        )
        line += (
            f" relay_viewers={len(rfps)} relay_cpu_per_viewer_pct={per:.2f}"
            f" relay_fps_min={min(rfps):.1f} ratio={per / (sfu_cpu / streams):.1f}"
        )
    print(line)


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
        self._frames = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self.on_track)
        self.channel = f"bench.{room}.{peer}"

    @property
    def video_frames(self) -> int:
        return self.counter.frames if self.counter is not None else self._frames

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


async def client_side(args: argparse.Namespace) -> None:
    loopback()
    started = time.monotonic()
    media = encode_media(4.0)
    kbps = sum(p.size for p in media[0]) * 8 / 4.0 / 1000
    print(
        f"pre-encoded 4 s: {len(media[0])} VP8 frames ({kbps:.0f} kb/s), "
        f"{len(media[1])} Opus packets in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    link = Link(reader, writer)
    result: dict[str, Any] = {"op": "report"}
    light = not args.full_viewers

    everyone: list[Viewer] = []
    if args.rooms:
        watchers: list[Viewer] = []
        for k in range(args.rooms):
            room = f"room{k}"
            link.send(
                op="publish",
                channel=worker_channel(WORKER),
                message={
                    "type": "room.open",
                    "session_id": room,
                    "codec": "vp8",
                    "record": args.record,
                    "meta": {"kind": "visit"},
                },
            )
            a, b = Viewer(link, room, "a", light), Viewer(link, room, "b", light)
            await a.join(replay_tracks(media), ["b"])
            await b.join(replay_tracks(media), ["a"])
            watchers += [a, b]
        everyone += watchers
        result["sfu_fps"] = await measure(link, "sfu", watchers, args.seconds)
        result["client_cpu_pct"] = CLIENT_CPU["sfu"]
    else:
        link.send(
            op="publish",
            channel=worker_channel(WORKER),
            message={"type": "room.open", "session_id": "fan", "codec": "vp8", "record": False},
        )
        publisher = Viewer(link, "fan", "pub", light)
        await publisher.join(replay_tracks(media), [])
        viewers = [Viewer(link, "fan", f"v{i}", light) for i in range(args.viewers)]
        for viewer in viewers:
            await viewer.join([], ["pub"])
        everyone += [publisher, *viewers]
        result["sfu_fps"] = await measure(link, "sfu", viewers, args.seconds)
        result["join_to_video_s"] = sorted(
            v.counter.first_at - v.offered_at
            for v in viewers
            if v.counter is not None and v.counter.first_at is not None
        )
    print("forwarding phase measured", flush=True)
    for viewer in everyone:
        await viewer.close()
    await asyncio.sleep(1.0)

    if args.relay_viewers and not args.rooms:
        publisher = Viewer(link, "relay", "pub", light)
        await publisher.join_relay(replay_tracks(media))
        await asyncio.sleep(0.5)
        viewers = [Viewer(link, "relay", f"v{i}", light) for i in range(args.relay_viewers)]
        for viewer in viewers:
            await viewer.join_relay([])
        print("relay phase joined", flush=True)
        result["relay_fps"] = await measure(link, "relay", viewers, args.seconds)
        for viewer in [publisher, *viewers]:
            await viewer.close()
    link.send(**result)
    await writer.drain()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument(
        "--rooms", type=int, default=0, help="K concurrent 1:1 rooms instead of one publisher"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--relay-viewers", type=int, default=2, help="viewers of the relay baseline"
    )
    parser.add_argument(
        "--role",
        default="worker",
        choices=["worker", "clients", "cluster-worker", "cluster-publisher"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="record every room too (the real recorder, files in a temporary directory)",
    )
    parser.add_argument(
        "--full-viewers",
        action="store_true",
        help="client peers receive through aiortc's whole receive path (jitter buffer, REMB)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="K > 1: cascade one publisher over K worker processes on Redis"
        " (GATEWAY_TEST_REDIS_URL or --redis; bench/fanout_cluster.py)",
    )
    parser.add_argument("--redis", default="", help="Redis URL for --workers > 1")
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--id", default="", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(process)d %(name)s %(message)s")
    if args.role.startswith("cluster-") or args.workers > 1:
        import fanout_cluster  # noqa: PLC0415  (this directory is on sys.path)

        if args.role == "cluster-worker":
            asyncio.run(fanout_cluster.worker_process(args.id, args.redis, args.prefix))
        elif args.role == "cluster-publisher":
            asyncio.run(fanout_cluster.publisher_process(args.id, args.redis, args.prefix))
        else:
            asyncio.run(fanout_cluster.run(args))
    elif args.role == "clients":
        asyncio.run(client_side(args))
    else:
        asyncio.run(worker_side(args))


if __name__ == "__main__":
    main()
