"""Read what makes a Matroska/WebM file seekable: the Segment's Cues and Info/Duration.

A small EBML walker over the file's top level (no dependency on the muxer under test):
players seek through the Cues element (id 0x1C53BB6B, one CuePoint per indexed keyframe)
and show the length from Info/Duration (0x4489).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import av

SEGMENT = 0x18538067
INFO = 0x1549A966
TIMESTAMP_SCALE = 0x2AD7B1
DURATION = 0x4489
CLUSTER = 0x1F43B675
CUES = 0x1C53BB6B
CUE_POINT = 0xBB
CUE_TIME = 0xB3


@dataclass(frozen=True)
class Index:
    duration_s: float | None
    cue_times_s: list[float]
    clusters: int


def _vint(data: bytes, i: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, length, all ones) of the EBML variable-size integer at ``i``."""
    first = data[i]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        raise ValueError(f"bad EBML vint at {i}")
    value = first if keep_marker else first & (0xFF >> length)
    for k in range(1, length):
        value = (value << 8) | data[i + k]
    ones = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, ones


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(id, payload start, payload end) of the elements in ``data[start:end]``."""
    out = []
    i = start
    while i < end:
        eid, n, _ = _vint(data, i, keep_marker=True)
        size, m, unknown = _vint(data, i + n, keep_marker=False)
        body = i + n + m
        stop = end if unknown else min(body + size, end)
        out.append((eid, body, stop))
        if unknown and eid != SEGMENT:
            break  # an unknown-size cluster runs to the end of what is there
        i = stop
    return out


def _uint(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big")


def read_index(path: Path) -> Index:
    """Duration and cue times (seconds) of a Matroska/WebM file."""
    data = path.read_bytes()
    segments = [c for c in _children(data, 0, len(data)) if c[0] == SEGMENT]
    assert segments, f"{path} has no Segment"
    _, seg_start, seg_end = segments[0]
    scale = 1_000_000
    raw_duration: float | None = None
    cue_ticks: list[int] = []
    clusters = 0
    for eid, body, stop in _children(data, seg_start, seg_end):
        if eid == INFO:
            for cid, cbody, cstop in _children(data, body, stop):
                if cid == TIMESTAMP_SCALE:
                    scale = _uint(data, cbody, cstop)
                elif cid == DURATION:
                    fmt = ">d" if cstop - cbody == 8 else ">f"
                    raw_duration = struct.unpack(fmt, data[cbody:cstop])[0]
        elif eid == CUES:
            for pid, pbody, pstop in _children(data, body, stop):
                if pid == CUE_POINT:
                    for qid, qbody, qstop in _children(data, pbody, pstop):
                        if qid == CUE_TIME:
                            cue_ticks.append(_uint(data, qbody, qstop))
        elif eid == CLUSTER:
            clusters += 1
    seconds = scale / 1e9
    return Index(
        duration_s=None if raw_duration is None else raw_duration * seconds,
        cue_times_s=[t * seconds for t in cue_ticks],
        clusters=clusters,
    )


def seek_video(path: Path, target_s: float) -> float:
    """Seek the video stream to the keyframe at or before ``target_s``; the decoded time."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        container.seek(round(target_s / stream.time_base), stream=stream)
        frame = next(container.decode(stream))
        return float(frame.time)
