"""CPU cost of recording forwarded VP8 + Opus without transcoding, vs aiortc MediaRecorder.

Usage: python bench/recording.py [--streams K] [--seconds S] [--baseline-streams N]

Each stream is one participant: pre-encoded VP8 640x480@30 at about 1 Mb/s plus 20 ms
Opus packets, fed at real-time pace from the event loop, one RoomRecorder per stream.
Phases, each measured as process CPU time / wall time:
  feed      the same feeding loop with a sink that does nothing (subtracted below)
  recorder  RoomRecorder (writer threads, muxing, flushing, hashing at close)
  baseline  aiortc MediaRecorder fed the decoded frames (it transcodes to VP8 + Opus)
"""

from __future__ import annotations

import argparse
import array
import asyncio
import math
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recorder.room import RoomRecorder  # noqa: E402

W, H, FPS, RATE = 640, 480, 30, 48000


def encode(seconds: float) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """(vp8 packets, opus packets, decoded video frames, decoded audio frames)."""
    venc = av.CodecContext.create("libvpx", "w")
    venc.width, venc.height, venc.pix_fmt = W, H, "yuv420p"
    venc.time_base = Fraction(1, FPS)
    venc.bit_rate = 1_000_000
    venc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    row = bytes((x * 3) % 256 for x in range(W * 3))
    vpk, vfr = [], []
    for i in range(int(seconds * FPS)):
        frame = av.VideoFrame(W, H, "yuv420p")
        shift = (i * 8) % W
        luma = b"".join(row[shift + (y % 64) : shift + (y % 64) + W] for y in range(H))
        frame.planes[0].update(luma)
        frame.planes[1].update(bytes([(i * 3) % 256]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([128]) * frame.planes[2].buffer_size)
        frame.pts, frame.time_base = i, venc.time_base
        vfr.append(frame)
        vpk.extend(venc.encode(frame))
    aenc = av.CodecContext.create("libopus", "w")
    aenc.sample_rate, aenc.layout, aenc.format = RATE, "stereo", "s16"
    aenc.time_base = Fraction(1, RATE)
    apk, afr = [], []
    for i in range(int(seconds * 50)):
        samples = array.array("h")
        for k in range(960):
            v = int(8000 * math.sin(2 * math.pi * 440 * (i * 960 + k) / RATE))
            samples.extend((v, v))
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = RATE, i * 960, aenc.time_base
        afr.append(frame)
        apk.extend(aenc.encode(frame))
    return vpk, apk, vfr, afr


def schedule(vpk: list[Any], apk: list[Any]) -> list[tuple[float, str, Any]]:
    items = []
    for p in vpk:
        q = av.Packet(bytes(p))
        q.pts, q.time_base, q.is_keyframe = p.pts * 3000, Fraction(1, 90000), p.is_keyframe
        items.append((p.pts / FPS, "video", q))
    for p in apk:
        q = av.Packet(bytes(p))
        q.pts, q.time_base = max(p.pts, 0) + 12345, Fraction(1, RATE)
        items.append((max(p.pts, 0) / RATE, "audio", q))
    items.sort(key=lambda x: x[0])
    return items


class NullSink:
    def on_packet(self, peer: str, kind: str, packet: Any, arrival: float) -> None:
        return None


async def feed(sinks: list[Any], items: list[tuple[float, str, Any]]) -> None:
    async def one(index: int, sink: Any) -> None:
        start = time.time() + index * 0.003
        for offset, kind, packet in items:
            delay = start + offset - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sink.on_packet(f"peer-{index}", kind, packet, time.time())

    await asyncio.gather(*(one(i, s) for i, s in enumerate(sinks)))


def measure(run: Any) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    asyncio.run(run())
    return time.process_time() - cpu0, time.perf_counter() - wall0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline-streams", type=int, default=2)
    args = parser.parse_args()
    k = args.streams

    vpk, apk, vfr, afr = encode(args.seconds)
    items = schedule(vpk, apk)
    kbps = sum(p.size for p in vpk) * 8 / args.seconds / 1000
    print(f"input: {len(vpk)} VP8 frames {W}x{H}@{FPS} ({kbps:.0f} kb/s), {len(apk)} Opus packets")
    tmp = Path(tempfile.mkdtemp(prefix="bench-recording-"))
    try:

        async def run_feed() -> None:
            await feed([NullSink() for _ in range(k)], items)

        cpu, wall = measure(run_feed)
        feed_pct = cpu / wall * 100
        print(f"feed only        : {k} streams, {cpu:.2f} s CPU / {wall:.2f} s = {feed_pct:.2f}%")

        async def run_recorder() -> None:
            recorders = [
                RoomRecorder(tmp / "rec", f"S{i}", "vp8", {"kind": "bench"}) for i in range(k)
            ]
            for r in recorders:
                r.start()
            await feed(recorders, items)
            await asyncio.gather(*(r.close() for r in recorders))

        cpu, wall = measure(run_recorder)
        rec_pct = cpu / wall * 100
        per_stream = max(rec_pct - feed_pct, 0.0) / k
        print(
            f"RoomRecorder     : {k} streams, {cpu:.2f} s CPU / {wall:.2f} s = {rec_pct:.2f}%"
            f" -> {per_stream:.3f}% of a core per stream (feed subtracted)"
        )

        n = max(1, min(args.baseline_streams, k))
        base = media_recorder_baseline(tmp, n, vfr, afr, args.seconds)
        print(f"MediaRecorder    : {n} streams -> {base:.2f}% of a core per stream (transcodes)")
        ratio = base / per_stream if per_stream > 0 else float("inf")
        print(
            f"BENCH recording streams={k} cpu_per_stream_pct={per_stream:.3f} "
            f"mediarecorder_cpu_per_stream_pct={base:.2f} ratio={ratio:.1f}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def media_recorder_baseline(
    tmp: Path, n: int, vfr: list[Any], afr: list[Any], seconds: float
) -> float:
    from aiortc.contrib.media import MediaRecorder
    from aiortc.mediastreams import MediaStreamTrack

    class Replay(MediaStreamTrack):  # type: ignore[misc]
        def __init__(self, kind: str, frames: list[Any], period: float) -> None:
            super().__init__()
            self.kind = kind
            self._frames = frames
            self._period = period
            self._index = 0
            self._start: float | None = None

        async def recv(self) -> Any:
            if self._index >= len(self._frames):
                self.stop()
                raise asyncio.CancelledError  # MediaStreamError in aiortc; ends the track
            if self._start is None:
                self._start = time.time()
            delay = self._start + self._index * self._period - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            source = self._frames[self._index]
            self._index += 1
            return source

    async def run() -> None:
        recorders = []
        for i in range(n):
            recorder = MediaRecorder(str(tmp / f"mr{i}.webm"))
            recorder.addTrack(Replay("video", vfr, 1 / FPS))
            recorder.addTrack(Replay("audio", afr, 960 / RATE))
            recorders.append(recorder)
        for r in recorders:
            await r.start()
        await asyncio.sleep(seconds)
        for r in recorders:
            await r.stop()

    feed_only = 0.0  # frames are handed over by reference: feeding cost is negligible
    cpu, wall = measure(run)
    return max(cpu / wall * 100 - feed_only, 0.0) / n


if __name__ == "__main__":
    main()
