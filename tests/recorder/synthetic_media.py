"""Synthetic media for recorder tests: a source that flashes and beeps at the same instants.

Packets are real VP8 (libvpx) and Opus (libopus) encodings of that source; ``feed``
replays them into a RoomRecorder the way the media layer does (RTP timestamps from a
random start, 1/90000 and 1/48000 time bases, wall-clock arrival times).
"""

from __future__ import annotations

import array
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

WIDTH, HEIGHT, FPS = 320, 240, 30
RATE = 48000
SAMPLES = 960  # 20 ms Opus frames
EVENTS = (1.0, 2.5, 4.0, 5.5, 7.0, 8.5)  # flash + beep instants (s of media time)
FLASH_S = 0.1
DURATION = 9.5


@dataclass(frozen=True)
class Encoded:
    kind: str
    data: bytes
    media_time: float  # seconds since the source started
    keyframe: bool


def _in_event(t: float) -> bool:
    return any(e <= t < e + FLASH_S for e in EVENTS)


def encode_source(duration: float = DURATION, gop: int = 60) -> list[Encoded]:
    out: list[Encoded] = []
    venc = av.CodecContext.create("libvpx", "w")
    venc.width, venc.height, venc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    venc.time_base = Fraction(1, FPS)
    venc.bit_rate = 400_000
    venc.gop_size = gop
    venc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    for i in range(int(duration * FPS)):
        t = i / FPS
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = 235 if _in_event(t) else 40
        for n, plane in enumerate(frame.planes):
            plane.update(bytes([luma if n == 0 else 128]) * plane.buffer_size)
        frame.pts = i
        frame.time_base = venc.time_base
        for packet in venc.encode(frame):
            out.append(Encoded("video", bytes(packet), packet.pts / FPS, packet.is_keyframe))
    aenc = av.CodecContext.create("libopus", "w")
    aenc.sample_rate, aenc.layout, aenc.format = RATE, "stereo", "s16"
    aenc.time_base = Fraction(1, RATE)
    for i in range(int(duration * RATE / SAMPLES)):
        samples = array.array("h")
        for k in range(SAMPLES):
            t = (i * SAMPLES + k) / RATE
            v = int(12000 * math.sin(2 * math.pi * 1000 * t)) if _in_event(t) else 0
            samples.append(v)
            samples.append(v)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=SAMPLES)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = RATE
        frame.pts = i * SAMPLES
        frame.time_base = aenc.time_base
        for packet in aenc.encode(frame):
            # libopus delays by its pre-skip; packet.pts (negative first) is the media time
            out.append(Encoded("audio", bytes(packet), packet.pts / RATE, True))
    return out


def packets_for(
    encoded: list[Encoded],
    *,
    t0: float,
    video_from: float = 0.0,
    audio_from: float = 0.0,
    video_rtp: int | None = None,
    audio_rtp: int | None = None,
    video_delay: float = 0.05,
    audio_delay: float = 0.03,
    until: float | None = None,
    seed: int = 1,
) -> list[tuple[str, Any, float]]:
    """(kind, av.Packet, arrival) in arrival order, like the media layer hands them over."""
    rng = random.Random(seed)
    vstart = rng.randrange(1 << 32) if video_rtp is None else video_rtp
    astart = rng.randrange(1 << 32) if audio_rtp is None else audio_rtp
    items = []
    for e in encoded:
        if until is not None and e.media_time >= until:
            continue
        if e.kind == "video":
            if e.media_time < video_from:
                continue
            pts = (vstart + round(e.media_time * 90000)) & 0xFFFFFFFF
            tb = Fraction(1, 90000)
            arrival = t0 + e.media_time + video_delay + rng.uniform(0, 0.01)
        else:
            if e.media_time < audio_from:
                continue
            pts = (astart + round(e.media_time * RATE)) & 0xFFFFFFFF
            tb = Fraction(1, RATE)
            arrival = t0 + e.media_time + audio_delay + rng.uniform(0, 0.005)
        packet = av.Packet(e.data)
        packet.pts = pts
        packet.time_base = tb
        packet.is_keyframe = e.keyframe
        items.append((e.kind, packet, arrival))
    items.sort(key=lambda x: x[2])
    return items


def decode_events(path: Path) -> tuple[list[float], list[float]]:
    """(flash onsets from video, beep onsets from audio) in seconds of file time."""
    flashes: list[float] = []
    beeps: list[float] = []
    with av.open(str(path)) as container:
        if container.streams.video:
            bright = False
            for frame in container.decode(video=0):
                y = bytes(frame.planes[0])[::97]
                now = sum(y) / len(y) > 140
                if now and not bright:
                    flashes.append(float(frame.time))
                bright = now
    with av.open(str(path)) as container:
        if container.streams.audio:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            loud_until = -1.0
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    samples = array.array("h", bytes(out.planes[0])[: out.samples * 2])
                    base = float(out.time)
                    for k in range(0, len(samples), 7):  # ~0.15 ms, not a divisor of the period
                        t = base + k / RATE
                        if abs(samples[k]) > 3000:
                            if t > loud_until + 0.2:
                                beeps.append(t)
                            loud_until = t
    return flashes, beeps


def av_offsets(flashes: list[float], beeps: list[float]) -> list[float]:
    """For each flash, the distance to the nearest beep (video minus audio)."""
    return [min((f - b for b in beeps), key=abs) for f in flashes] if beeps else []


def probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as container:
        info: dict[str, Any] = {
            "codecs": {s.type: s.codec_context.name for s in container.streams},
            "frames": {"video": 0, "audio": 0},
            "end": 0.0,
        }
        for packet in container.demux():
            if packet.size == 0 or packet.pts is None:
                continue
            info["frames"][packet.stream.type] += 1
            info["end"] = max(info["end"], float(packet.pts * packet.time_base))
    return info


def iter_feed(items: list[tuple[str, Any, float]]) -> Iterator[tuple[str, Any, float]]:
    yield from items
