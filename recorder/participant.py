"""Per-participant recording state machine; runs only in the room's writer thread.

Timeline: each participant has a zero (``t0``, the wall-clock arrival of its first recorded
packet). A track's packets are placed on that timeline by their RTP clock (unwrapped), the
run's first packet being anchored at its own arrival time, so tracks that start at
different moments line up. A file (segment) covers ``[origin, end)`` of the timeline and
its packets are written at ``timeline_ms - origin``.

Track start: packets are buffered until both kinds are present (video from its first
keyframe) or ``track_wait`` has passed, then the file is opened with the kinds seen.
Matroska cannot add a track once the header is written, so a kind that arrives later
starts a new segment (reason ``track_added``), at the next video keyframe.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from config.errors import RecorderError
from recorder.bitstream import h264_dimensions, opus_duration_ms, vp8_dimensions
from recorder.segment import CONTAINERS, SegmentInfo, SegmentWriter

logger = logging.getLogger(__name__)

_WRAP = 1 << 32
_HALF = 1 << 31
_KEYFRAME_REQUEST_INTERVAL = 0.5
_DEFAULT_VIDEO_MS = 33


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    """Tunables of a room recording (the lead builds this from the settings object).

    Attributes:
        segment_seconds: start a new file after this much media (at the next keyframe).
        track_wait_seconds: how long to buffer the first kind while waiting for the other.
        keyframe_timeout_seconds: how long a rotation waits for a keyframe before it cuts
            anyway (video then resumes at the next keyframe).
        queue_packets: writer queue bound; packets beyond it are dropped and counted.
        cluster_ms: longest Matroska cluster; with ``interleave_ms`` the crash-loss bound.
        interleave_ms: longest time the muxer may hold packets to interleave tracks.
        resync_seconds: re-anchor a track to wall clock if its RTP clock strays this far
            (a timestamp jump without a track end, e.g. a new SSRC).
        seek_keyframe_seconds: ask for a keyframe when the video has had none for this
            long (0: never). Browsers send keyframes only on request, and a player seeks to
            the keyframe before the target and decodes from there: without this, a seek
            into minute 31 of a call could mean decoding from minute 0.
    """

    segment_seconds: float = 1800.0
    track_wait_seconds: float = 1.5
    keyframe_timeout_seconds: float = 3.0
    queue_packets: int = 4096
    cluster_ms: int = 1000
    interleave_ms: int = 500
    resync_seconds: float = 5.0
    seek_keyframe_seconds: float = 10.0


@dataclass(slots=True)
class QueuedPacket:
    """A packet as captured on the event loop (attributes read there, bytes copied later)."""

    peer: str
    kind: str
    packet: Any  # av.Packet (or anything with the buffer protocol)
    pts: int
    time_base: Fraction
    keyframe: bool
    arrival: float
    seq: int


class ParticipantHost(Protocol):
    """What a participant needs from its room (implemented by ``RoomRecorder``)."""

    session_dir: Path
    codec: str
    settings: RecorderSettings

    def request_keyframe(self, peer: str) -> None:
        """Ask the media layer for a keyframe from ``peer`` (thread-safe)."""

    def segment_opened(self, info: SegmentInfo) -> None:
        """A new file was opened."""

    def segment_closed(self, info: SegmentInfo, path: Path) -> None:
        """A file was finalised (hash it)."""

    def participant_error(self, peer: str, error: Exception) -> None:
        """A file failed; the participant continues in a new segment."""


class TrackClock:
    """Unwraps 32-bit RTP timestamps and maps them to timeline milliseconds."""

    def __init__(self, resync_ms: float) -> None:
        self._resync_ms = resync_ms
        self._last32: int | None = None
        self._ext = 0
        self._run: tuple[int, float] | None = None

    def reset(self) -> None:
        """Forget the run: the next packet is re-anchored to its arrival (new track)."""
        self._last32 = None
        self._run = None

    def unwrap(self, pts: int) -> int:
        """Extended (64-bit) timestamp; a backwards step under 2**31 is a reorder."""
        pts &= _WRAP - 1
        if self._last32 is None:
            self._ext = pts
        else:
            delta = (pts - self._last32) % _WRAP
            if delta >= _HALF:
                delta -= _WRAP
            self._ext += delta
        self._last32 = pts
        return self._ext

    def to_ms(self, pts: int, tick_ms: float, arrival_ms: float) -> int:
        """Timeline position of a packet."""
        ext = self.unwrap(pts)
        if self._run is not None:
            position = self._run[1] + (ext - self._run[0]) * tick_ms
            if abs(position - arrival_ms) <= self._resync_ms:
                return round(position)
            logger.info(
                "RTP clock strayed %.0f ms from wall clock: re-anchoring", position - arrival_ms
            )
        self._run = (ext, arrival_ms)
        return round(arrival_ms)


def safe_name(peer: str) -> str:
    """A file-name-safe form of a peer id."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", peer)[:64].lstrip(".")
    return cleaned or "peer"


@dataclass(slots=True)
class _Buffered:
    kind: str
    data: Any
    ms: int
    duration: int
    keyframe: bool


class ParticipantRecorder:
    """Records one participant into a sequence of segment files (writer thread only)."""

    def __init__(self, peer: str, host: ParticipantHost, file_stem: str) -> None:
        self.peer = peer
        self._host = host
        self._settings = host.settings
        self._stem = file_stem
        self._container_format, self._ext = CONTAINERS[host.codec]
        resync_ms = self._settings.resync_seconds * 1000
        self._clocks = {"video": TrackClock(resync_ms), "audio": TrackClock(resync_ms)}
        self._last_seq: dict[str, int] = {}
        self._t0: float | None = None
        self._segment: SegmentWriter | None = None
        self._origin = 0
        self._segment_index = 0
        self._buffer: list[_Buffered] = []
        self._waiting_since: float | None = None
        self._pending_audio: list[_Buffered] = []
        self._rotate: str | None = None
        self._rotate_since = 0.0
        self._next_reason = "start"
        self._need_keyframe = True
        self._dims: tuple[int, int] | None = None
        self._last_video_ms: int | None = None
        self._video_interval = _DEFAULT_VIDEO_MS
        self._last_kf_request = 0.0
        self._last_keyframe_ms: int | None = None
        self._ended: set[str] = set()
        self.skipped_before_keyframe = 0
        self.segments: list[SegmentInfo] = []

    # -- packets ---------------------------------------------------------------------------

    def handle(self, item: QueuedPacket) -> None:
        """Place one packet on the timeline and write it (or buffer it)."""
        kind = item.kind
        last_seq = self._last_seq.get(kind)
        self._last_seq[kind] = item.seq
        if kind == "video" and last_seq is not None and item.seq != last_seq + 1:
            # Frames were dropped before the writer saw them: decode would break until the
            # next keyframe.
            self._need_keyframe = True
        if self._t0 is None:
            self._t0 = item.arrival
        arrival_ms = (item.arrival - self._t0) * 1000.0
        tick_ms = float(item.time_base) * 1000.0
        ms = self._clocks[kind].to_ms(item.pts, tick_ms, arrival_ms)
        if kind == "video":
            if item.keyframe:
                self._need_keyframe = False
                self._last_keyframe_ms = ms
                dims = self._parse_dims(item.packet)
                if dims is not None:
                    self._dims = dims
            elif self._need_keyframe or self._dims is None:
                self.skipped_before_keyframe += 1
                self._ask_keyframe(item.arrival)
                return
            else:
                self._keep_seekable(ms, item.arrival)
            if self._last_video_ms is not None and 0 < ms - self._last_video_ms < 1000:
                self._video_interval = ms - self._last_video_ms
            self._last_video_ms = ms
            duration = self._video_interval
        else:
            duration = round(opus_duration_ms(memoryview(item.packet)[:2].tobytes()))
        buffered = _Buffered(kind, item.packet, ms, duration, item.keyframe)

        if self._segment is None:
            if self._waiting_since is None:
                self._waiting_since = item.arrival
            self._buffer.append(buffered)
            self._maybe_open(item.arrival)
            return
        segment = self._segment
        if kind not in segment.kinds:
            if kind == "video":  # a keyframe (checked above): cut here, both kinds after
                self._cut(buffered, "track_added")
            else:
                self._pending_audio.append(buffered)
                if self._rotate is None:
                    self._start_rotation("track_added", item.arrival)
                elif item.arrival - self._rotate_since > self._settings.keyframe_timeout_seconds:
                    self._cut(self._pending_audio.pop(0), self._rotate)
            return
        if kind == "video" and item.keyframe:
            if self._dims is not None and self._dims != (segment.info.width, segment.info.height):
                self._cut(buffered, "resolution")
                return
            if self._rotate is not None:
                self._cut(buffered, self._rotate)
                return
        elif self._rotate is not None and (
            "video" not in segment.kinds
            or item.arrival - self._rotate_since > self._settings.keyframe_timeout_seconds
        ):
            self._cut(buffered, self._rotate)
            return
        self._write(buffered)
        if self._rotate is None and ms - self._origin >= self._settings.segment_seconds * 1000:
            self._start_rotation("rotation", item.arrival)

    def tick(self, now: float) -> None:
        """Periodic work while the queue is idle: open after the track wait, cut on timeout."""
        if self._segment is None and self._buffer:
            self._maybe_open(now)
        elif (
            self._rotate is not None
            and self._pending_audio
            and now - self._rotate_since > self._settings.keyframe_timeout_seconds
        ):
            first = self._pending_audio.pop(0)
            self._cut(first, self._rotate)

    def track_ended(self, kind: str) -> None:
        """A track stopped: its next packet starts a new run; with no live track, close."""
        self._clocks[kind].reset()
        self._last_seq.pop(kind, None)
        if kind == "video":
            self._need_keyframe = True
            self._last_video_ms = None
        self._ended.add(kind)
        live = self._segment.kinds if self._segment is not None else self._buffer_kinds()
        if self._ended >= {"video", "audio"} or (live and self._ended >= live):
            self.finish()
            self._next_reason = "restart"

    def finish(self) -> None:
        """Write what is buffered and close the current file."""
        if self._segment is None and self._buffer:
            buffered, self._buffer = self._buffer, []
            self._open(min(b.ms for b in buffered), frozenset(b.kind for b in buffered))
            for entry in buffered:
                self._write(entry)
        if self._pending_audio:  # late audio and no keyframe yet: it still gets its file
            self._cut(self._pending_audio.pop(0), self._rotate or "track_added")
        self._close_segment()
        self._rotate = None

    # -- internals -------------------------------------------------------------------------

    def _parse_dims(self, packet: Any) -> tuple[int, int] | None:
        view = memoryview(packet)
        if self._host.codec == "h264":
            return h264_dimensions(view.tobytes())
        return vp8_dimensions(view[:10].tobytes())

    def _ask_keyframe(self, now: float) -> None:
        if now - self._last_kf_request >= _KEYFRAME_REQUEST_INTERVAL:
            self._last_kf_request = now
            self._host.request_keyframe(self.peer)

    def _keep_seekable(self, ms: int, now: float) -> None:
        """Ask for a keyframe (once per interval) when the last one is too far back."""
        interval = self._settings.seek_keyframe_seconds
        last = self._last_keyframe_ms
        if (
            interval > 0
            and last is not None
            and ms - last >= interval * 1000
            and now - self._last_kf_request >= interval
        ):
            self._last_kf_request = now
            self._host.request_keyframe(self.peer)

    def _start_rotation(self, reason: str, now: float) -> None:
        self._rotate = reason
        self._rotate_since = now
        self._last_kf_request = 0.0
        self._ask_keyframe(now)

    def _buffer_kinds(self) -> frozenset[str]:
        return frozenset(b.kind for b in self._buffer)

    def _maybe_open(self, now: float) -> None:
        kinds = self._buffer_kinds()
        waited = now - (self._waiting_since or now)
        if kinds >= {"video", "audio"} or waited >= self._settings.track_wait_seconds:
            buffered, self._buffer = self._buffer, []
            self._open(min(b.ms for b in buffered), kinds)
            for entry in buffered:
                self._write(entry)

    def _cut(self, first: _Buffered, reason: str) -> None:
        """Close the current file and start the next one at ``first``."""
        old_kinds = self._segment.kinds if self._segment is not None else frozenset()
        self._close_segment()
        pending, self._pending_audio = self._pending_audio, []
        kinds = set(old_kinds) | {first.kind} | {p.kind for p in pending}
        if "video" in kinds and self._dims is None:
            kinds.discard("video")
        origin = min([first.ms] + [p.ms for p in pending])
        self._next_reason = reason
        self._rotate = None
        self._open(origin, frozenset(kinds))
        if first.kind == "video" and not first.keyframe:
            self._need_keyframe = True
        else:
            self._write(first)
        for entry in pending:
            self._write(entry)

    def _open(self, origin: int, kinds: frozenset[str]) -> None:
        assert self._t0 is not None
        self._waiting_since = None
        self._origin = origin
        index = self._segment_index
        self._segment_index += 1
        name = f"{self._stem}-{index:03d}.{self._ext}"
        video = None
        if "video" in kinds and self._dims is not None:
            video = (self._host.codec, self._dims[0], self._dims[1])
        codecs = {}
        if video is not None:
            codecs["video"] = self._host.codec
        if "audio" in kinds:
            codecs["audio"] = "opus"
        info = SegmentInfo(
            path=name,
            peer=self.peer,
            segment=index,
            container=self._container_format,
            codecs=codecs,
            width=video[1] if video else None,
            height=video[2] if video else None,
            started_at=self._t0 + origin / 1000.0,
            reason=self._next_reason,
        )
        self._next_reason = "rotation"
        self._ended = set()
        try:
            self._segment = SegmentWriter(
                self._host.session_dir / name,
                info,
                container_format=self._container_format,
                video=video,
                audio="audio" in kinds,
                cluster_ms=self._settings.cluster_ms,
                interleave_ms=self._settings.interleave_ms,
            )
        except RecorderError as exc:
            info.state = "failed"
            self.segments.append(info)
            self._host.participant_error(self.peer, exc)
            self._segment = None
            return
        self.segments.append(info)
        self._host.segment_opened(info)

    def _write(self, entry: _Buffered) -> None:
        segment = self._segment
        if segment is None:
            return
        if entry.kind not in segment.kinds:
            if entry.kind == "audio":
                self._pending_audio.append(entry)
            return
        try:
            segment.mux(
                entry.kind,
                bytes(entry.data),
                entry.ms - self._origin,
                entry.duration,
                keyframe=entry.keyframe,
            )
        except RecorderError as exc:
            logger.warning("%s: %s; starting a new file", self.peer, exc, exc_info=True)
            self._host.participant_error(self.peer, exc)
            segment.info.state = "failed"
            self._close_segment()
            self._need_keyframe = True
            self._next_reason = "restart"

    def _close_segment(self) -> None:
        segment = self._segment
        if segment is None:
            return
        self._segment = None
        info = segment.info
        try:
            segment.close()
        except RecorderError as exc:
            info.state = "failed"
            self._host.participant_error(self.peer, exc)
        assert self._t0 is not None
        info.ended_at = info.started_at + segment.end_ms / 1000.0
        info.duration_s = round(segment.end_ms / 1000.0, 3)
        if info.state == "recording":
            info.state = "closed"
        self._host.segment_closed(info, segment.path)
