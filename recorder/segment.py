"""One output file: a WebM/Matroska container that muxes pre-encoded packets.

Runs only in a recorder writer thread. Crash safety comes from muxer options: Matroska
clusters are closed at least every ``cluster_ms`` and ``flush_packets`` pushes each closed
cluster to the file at once; the interleaving queue is capped at ``interleave_ms``. A
SIGKILL therefore loses at most about ``cluster_ms + interleave_ms`` of media (MEDIA.md:
Matroska stays readable up to its last flushed data). What reached the file is also made
durable every :data:`SYNC_INTERVAL_S` (``fsync``, in the writer thread) and at close, so a
power loss costs at most about one second more.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from config.errors import RecorderError

logger = logging.getLogger(__name__)

MS = Fraction(1, 1000)

#: how often what the muxer wrote is forced to the disk
SYNC_INTERVAL_S = 1.0

#: video codec → (container format, file extension)
CONTAINERS: dict[str, tuple[str, str]] = {
    "vp8": ("webm", "webm"),
    "h264": ("matroska", "mkv"),
}


@dataclass(slots=True)
class SegmentInfo:
    """What the manifest says about one file (mutable while the file is written)."""

    path: str
    peer: str
    segment: int
    container: str
    codecs: dict[str, str]
    width: int | None
    height: int | None
    started_at: float
    ended_at: float | None = None
    frames: dict[str, int] = field(default_factory=dict)
    bytes: int | None = None
    sha256: str | None = None
    state: str = "recording"
    reason: str = "start"
    duration_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest ``files[]`` entry (ISO timestamps)."""
        from recorder.manifest import iso_utc

        return {
            "path": self.path,
            "peer": self.peer,
            "segment": self.segment,
            "container": self.container,
            "codecs": dict(self.codecs),
            "width": self.width,
            "height": self.height,
            "started_at": iso_utc(self.started_at),
            "ended_at": iso_utc(self.ended_at),
            "duration_s": self.duration_s,
            "frames": dict(self.frames),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "state": self.state,
            "reason": self.reason,
        }


class SegmentWriter:
    """Mux pre-encoded video/audio packets into one file with a 1 ms time base.

    Args:
        path: output file.
        container_format: ``"webm"`` or ``"matroska"``.
        info: the manifest entry, updated in place (frames, end time).
        video: ``(codec, width, height)`` or None for an audio-only file.
        audio: whether the file has an Opus track.
        cluster_ms: longest Matroska cluster, i.e. the crash-loss bound.
        interleave_ms: longest time the muxer may hold packets to interleave tracks.
    """

    def __init__(
        self,
        path: Path,
        info: SegmentInfo,
        *,
        container_format: str,
        video: tuple[str, int, int] | None,
        audio: bool,
        cluster_ms: int = 1000,
        interleave_ms: int = 500,
    ) -> None:
        self.path = path
        self.info = info
        self._last: dict[str, int] = {}
        self._end_ms = 0
        try:
            # Claim the name first: a recording is evidence, so a file that exists already is
            # never truncated (av.open would), whatever bug or race led here.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except OSError as exc:
            raise RecorderError(f"cannot create recording file {str(path)!r}: {exc}") from exc
        try:
            self._container = av.open(
                str(path),
                "w",
                format=container_format,
                container_options={
                    "cluster_time_limit": str(cluster_ms),
                    "max_interleave_delta": str(interleave_ms * 1000),
                    "flush_packets": "1",
                },
            )
            self._streams: dict[str, Any] = {}
            if video is not None:
                self._streams["video"] = self._container.add_mux_stream(
                    video[0], width=video[1], height=video[2], time_base=MS
                )
            if audio:
                # add_mux_stream("opus") writes no CodecPrivate (OpusHead): readers then guess
                # the channel count and strict players refuse the track. A libopus stream
                # gets the OpusHead from the encoder, which is opened once and never fed.
                stream = self._container.add_stream("libopus", rate=48000, layout="stereo")
                stream.time_base = MS
                self._streams["audio"] = stream
        except (av.FFmpegError, ValueError) as exc:
            raise RecorderError(f"cannot open recording file {str(path)!r}: {exc}") from exc
        # fsync through a descriptor of our own (on Linux it flushes the file's data whatever
        # descriptor wrote it; FFmpeg's is not exposed), opened once the muxer made the file
        self._sync_fd: int | None = None
        self._synced_at = time.monotonic()
        for kind in self._streams:
            info.frames.setdefault(kind, 0)

    @property
    def kinds(self) -> frozenset[str]:
        """The track kinds this file holds."""
        return frozenset(self._streams)

    @property
    def end_ms(self) -> int:
        """End of the last muxed packet, in ms relative to the file start."""
        return self._end_ms

    def mux(self, kind: str, data: bytes, pts_ms: int, duration_ms: int, *, keyframe: bool) -> None:
        """Mux one encoded frame at ``pts_ms`` (clamped to keep each track increasing).

        ``keyframe`` must be true for a video keyframe and for every Opus packet: the muxer
        sets the SimpleBlock keyframe flag from it and indexes only flagged video packets
        (or, in an audio-only file, flagged audio at cluster starts) in the Cues. Without it
        the file is written with no Cues at all and players cannot seek.
        """
        stream = self._streams[kind]
        last = self._last.get(kind)
        if pts_ms < 0:
            pts_ms = 0
        if last is not None and pts_ms <= last:
            pts_ms = last + 1
        self._last[kind] = pts_ms
        packet = av.Packet(data)
        packet.pts = packet.dts = pts_ms
        packet.duration = duration_ms
        packet.time_base = MS
        packet.is_keyframe = keyframe
        packet.stream = stream
        try:
            self._container.mux(packet)
        except (av.FFmpegError, ValueError) as exc:
            raise RecorderError(f"cannot mux {kind} into {str(self.path)!r}: {exc}") from exc
        self.info.frames[kind] += 1
        self._end_ms = max(self._end_ms, pts_ms + duration_ms)
        now = time.monotonic()
        if now - self._synced_at >= SYNC_INTERVAL_S:
            self._synced_at = now
            self._sync()

    def _sync(self) -> None:
        """Make what was written durable (the new directory entry too, the first time)."""
        if self._sync_fd is None:
            try:
                self._sync_fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                return  # nothing written yet
            fsync_dir(self.path.parent)
        os.fsync(self._sync_fd)

    def close(self) -> None:
        """Write trailers (cues, duration); safe to call twice."""
        container = self._container
        if container is None:
            return
        self._container = None  # type: ignore[assignment]  # closed marker
        try:
            container.close()
        except (av.FFmpegError, ValueError) as exc:
            raise RecorderError(f"cannot finalise {str(self.path)!r}: {exc}") from exc
        finally:
            try:
                self._sync()
            finally:
                fd, self._sync_fd = self._sync_fd, None
                if fd is not None:
                    os.close(fd)


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a new or renamed file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
