"""Incoming RTP for forwarding: header parsing, depayloading and frame assembly over bytes.

Plain Python on ``bytes``, no aiortc objects: ``hooks.py`` wires it below aiortc's receiver, so
a published packet goes from the socket to a complete encoded frame in one synchronous call
(MEDIA.md: aiortc's own path costs a queue, a task wake-up, a parse into objects, a jitter
buffer scan and a thread hand-off per datagram).

* :func:`parse_rtp` reads the fixed header, skips CSRCs and padding and finds abs-send-time.
* :func:`vp8_depayload` strips the VP8 payload descriptor (RFC 7741 §4.2).
* :class:`VideoAssembler` puts packets in sequence order, waits a bounded time for missing
  ones (retransmissions after a NACK), emits each frame once all its packets are there, and
  after a loss it could not repair drops frames until the next keyframe (the viewer's decoder
  would otherwise show a corrupted picture until then) and asks for one.
* :class:`LossTracker` lists the missing sequence numbers to NACK, repeating the request while
  they are still missing.
* :class:`TimestampUnwrapper` makes RTP timestamps count from 0 across 32-bit wrap-arounds.
* :class:`SpeakingDetector` tells when a participant starts and stops speaking from the audio
  level each audio packet carries (RFC 6464 ``ssrc-audio-level``), without decoding.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

from config.ratelimit import TokenBucket

#: how long a gap in the sequence may hold back later frames while its retransmission is
#: awaited; after that the frame is given up, later ones wait for a keyframe
MAX_GAP_WAIT_S = 0.4
#: at most this many packets wait behind a gap (about 5 s of 1 Mb/s video, as aiortc's buffer)
MAX_PENDING = 512
#: a jump this far ahead is a new stream origin (a publisher restart), not a loss to repair
MAX_JUMP = 3000
#: a frame of more packets than this is dropped as lost (about 2.4 MB: a 4K keyframe is less;
#: a publisher that never sets the marker bit must not grow the worker's memory)
MAX_FRAME_PACKETS = 2000
#: a NACK for packets still missing is repeated after this long, at most NACK_REPEATS times
NACK_REPEAT_S = 0.1
NACK_REPEATS = 3
#: missing packets older than this many sequence numbers are no longer asked for
NACK_WINDOW = 512


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Whether an encoded frame can be decoded on its own.

    Args:
        codec_name: ``VP8``, ``H264`` or an audio codec name (always ``True``).
        data: the depayloaded frame (VP8 frame, or H264 in Annex-B form).
    """
    name = codec_name.lower()
    if name == "vp8":
        return bool(data) and (data[0] & 1) == 0
    if name == "h264":
        return any(nal_type in (5, 7) for nal_type in _h264_nal_types(data))
    return True


def _h264_nal_types(data: bytes) -> Iterator[int]:
    i = data.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(data):
        yield data[i + 3] & 0x1F
        i = data.find(b"\x00\x00\x01", i + 3)


def seq_newer(a: int, b: int) -> bool:
    """Whether 16-bit sequence number ``a`` comes after ``b`` (RFC 1982 serial arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def parse_rtp(
    data: bytes, abs_send_time_id: int | None, audio_level_id: int | None = None
) -> tuple[int, bool, int, int, int, int, int, int | None, int | None] | None:
    """The header of an RTP packet, or ``None`` if it is malformed.

    Returns:
        ``(payload_type, marker, sequence_number, timestamp, ssrc, payload_start,
        payload_end, abs_send_time, audio_level)``; the payload is
        ``data[payload_start:payload_end]`` (padding removed); ``abs_send_time`` and
        ``audio_level`` (0 loudest to 127 silent, in -dBov) are ``None`` unless the one-byte
        header extension with that id is present.
    """
    size = len(data)
    if size < 12:
        return None
    first = data[0]
    if first >> 6 != 2:
        return None
    start = 12 + 4 * (first & 0x0F)
    abs_send_time = audio_level = None
    if first & 0x10:  # header extension
        if start + 4 > size:
            return None
        words = (data[start + 2] << 8) | data[start + 3]
        ext_end = start + 4 + 4 * words
        if ext_end > size:
            return None
        wanted = (abs_send_time_id is not None) + (audio_level_id is not None)
        if wanted and data[start] == 0xBE and data[start + 1] == 0xDE:
            i = start + 4
            while i < ext_end and wanted:
                byte = data[i]
                if byte == 0:  # padding
                    i += 1
                    continue
                ext_id, length = byte >> 4, (byte & 0x0F) + 1
                if ext_id == 15 or i + 1 + length > ext_end:
                    break
                if ext_id == abs_send_time_id and length == 3:
                    abs_send_time = (data[i + 1] << 16) | (data[i + 2] << 8) | data[i + 3]
                    wanted -= 1
                elif ext_id == audio_level_id and length == 1:
                    audio_level = data[i + 1] & 0x7F
                    wanted -= 1
                i += 1 + length
        start = ext_end
    end = size
    if first & 0x20:  # padding: the last byte says how much
        padding = data[-1]
        if padding == 0 or start + padding > size:
            return None
        end -= padding
    if start > end:
        return None
    second = data[1]
    return (
        second & 0x7F,
        bool(second & 0x80),
        (data[2] << 8) | data[3],
        int.from_bytes(data[4:8], "big"),
        int.from_bytes(data[8:12], "big"),
        start,
        end,
        abs_send_time,
        audio_level,
    )


def vp8_depayload(payload: bytes) -> tuple[bytes, bool] | None:
    """The VP8 data of one packet and whether it starts a frame, or ``None`` if malformed.

    A frame starts at the beginning of partition 0 (S bit set and partition index 0).
    """
    size = len(payload)
    if size < 1:
        return None
    first = payload[0]
    offset = 1
    if first & 0x80:  # X: extension octet
        if size < 2:
            return None
        flags = payload[1]
        offset = 2
        if flags & 0x80:  # I: picture id, 7 or 15 bits
            if size <= offset:
                return None
            offset += 2 if payload[offset] & 0x80 else 1
        if flags & 0x40:  # L: TL0PICIDX
            offset += 1
        if flags & 0x30:  # T or K: TID/Y/KEYIDX
            offset += 1
    if offset >= size:
        return None
    return payload[offset:], bool(first & 0x10) and (first & 0x07) == 0


_RTCP_NACK_HEADER = struct.Struct("!BBHLL")
_NACK_ITEM = struct.Struct("!HH")


def pack_nack(sender_ssrc: int, media_ssrc: int, lost: list[int]) -> bytes:
    """An RTCP generic NACK (RFC 4585 §6.2.1) for ``lost``, oldest first, across wrap-arounds."""
    items = []
    pid, blp = lost[0], 0
    for seq in lost[1:]:
        distance = (seq - pid - 1) & 0xFFFF
        if distance < 16:
            blp |= 1 << distance
        else:
            items.append(_NACK_ITEM.pack(pid, blp))
            pid, blp = seq, 0
    items.append(_NACK_ITEM.pack(pid, blp))
    words = 2 + len(items)  # length in 32-bit words minus one
    return _RTCP_NACK_HEADER.pack(0x81, 205, words, sender_ssrc, media_ssrc) + b"".join(items)


class TimestampUnwrapper:
    """RTP timestamps from 0 for the first one, continuing across 32-bit wrap-arounds."""

    __slots__ = ("_last", "_origin")

    def __init__(self) -> None:
        self._origin: int | None = None
        self._last = 0

    def __call__(self, timestamp: int) -> int:
        if self._origin is None:
            self._origin = timestamp
        elif timestamp < self._last and self._last - timestamp > 0x80000000:
            self._origin -= 1 << 32  # wrapped
        elif timestamp > self._last and timestamp - self._last > 0x80000000:
            return timestamp - self._origin - (1 << 32)  # a late frame from before a wrap
        self._last = timestamp
        return timestamp - self._origin


#: emit(frame data, RTP timestamp, is keyframe, arrival of its earliest packet)
FrameCallback = Callable[[bytes, int, bool, float], None]


class VideoAssembler:
    """Complete encoded video frames from RTP packets that may come late, twice or never.

    Packets are consumed in sequence order. One that arrives ahead of a gap waits (with those
    after it) until the gap is filled by a retransmission, or at most :data:`MAX_GAP_WAIT_S`;
    then the gap is skipped, the frame it broke is dropped and :attr:`need_keyframe` is set:
    frames are dropped until a keyframe arrives and ``on_loss`` is called to ask for one.

    A packet starts a frame when the codec says so (``start`` True or False, as VP8's S bit), or,
    when it cannot (``start`` None, e.g. H264), when it follows a packet with the marker bit or
    carries a new timestamp.

    A frame is emitted with the arrival time of its earliest packet: a browser paces a large
    keyframe's packets over 100 ms or more, and the recording places a track by its first
    frame's arrival, so the last packet's time would put the video late against the audio.
    """

    __slots__ = (
        "_after_marker",
        "_after_skip",
        "_emit",
        "_frame_arrival",
        "_frame_ts",
        "_frame_valid",
        "_gap_since",
        "_is_keyframe",
        "_on_loss",
        "_parts",
        "_pending",
        "dropped_frames",
        "expected",
        "frames",
        "need_keyframe",
        "skipped_gaps",
    )

    def __init__(
        self,
        emit: FrameCallback,
        is_keyframe: Callable[[bytes], bool],
        on_loss: Callable[[], None],
    ) -> None:
        self._emit = emit
        self._is_keyframe = is_keyframe
        self._on_loss = on_loss
        self.expected: int | None = None
        self._pending: dict[int, tuple[int, bool, bytes, bool | None, float]] = {}
        self._gap_since = 0.0
        self._parts: list[bytes] = []
        self._frame_ts = -1
        self._frame_arrival = 0.0
        self._frame_valid = False
        self._after_marker = True  # a stream starts on a frame boundary
        self._after_skip = False
        #: until a keyframe arrives, frames are dropped (set at first and after a lost frame)
        self.need_keyframe = True
        self.frames = 0
        self.dropped_frames = 0
        self.skipped_gaps = 0

    def push(
        self, seq: int, timestamp: int, marker: bool, data: bytes, start: bool | None, now: float
    ) -> None:
        """Take one packet's depayloaded data; ``now`` is a monotonic clock in seconds."""
        expected = self.expected
        if expected is None:
            expected = seq
        distance = (seq - expected) & 0xFFFF
        if distance == 0 and not self._pending:  # in order, nothing waiting: the usual case
            self._consume(timestamp, marker, data, start, now)
            self.expected = (seq + 1) & 0xFFFF
            return
        if distance >= 0x8000 and 0x10000 - distance <= MAX_JUMP:
            self.expected = expected
            return  # already consumed or given up: a duplicate or a late retransmission
        if distance > MAX_JUMP:
            self._restart(seq)
            self._consume(timestamp, marker, data, start, now)
            self.expected = (seq + 1) & 0xFFFF
            return
        if not self._pending:
            self._gap_since = now
        self._pending[seq] = (timestamp, marker, data, start, now)
        self.expected = expected
        self._drain()
        if self._pending and (
            now - self._gap_since > MAX_GAP_WAIT_S or len(self._pending) > MAX_PENDING
        ):
            self._skip(now)

    def _drain(self) -> None:
        pending = self._pending
        expected = self.expected
        assert expected is not None
        while expected in pending:
            timestamp, marker, data, start, arrival = pending.pop(expected)
            self._consume(timestamp, marker, data, start, arrival)
            expected = (expected + 1) & 0xFFFF
        self.expected = expected

    def _skip(self, now: float) -> None:
        """Give up the packets missing before the first waiting one."""
        expected = self.expected
        assert expected is not None
        first = min(self._pending, key=lambda s: (s - expected) & 0xFFFF)
        self.expected = first
        self.skipped_gaps += 1
        self._lost()
        self._after_skip = True
        self._after_marker = False
        self._drain()
        self._gap_since = now  # what still waits is behind a new gap, opened now

    def _restart(self, seq: int) -> None:
        self._pending.clear()
        self.expected = seq
        self._lost()
        self._after_skip = True
        self._after_marker = False

    def _lost(self) -> None:
        self._parts = []
        self._frame_valid = False
        if not self.need_keyframe:
            self.need_keyframe = True
        self._on_loss()

    def _consume(
        self, timestamp: int, marker: bool, data: bytes, start: bool | None, arrival: float
    ) -> None:
        if start is None:
            start = self._after_marker or (not self._after_skip and timestamp != self._frame_ts)
        if start:
            if self._frame_valid and self._parts:
                self._lost()  # the previous frame never got its last packet (marker)
            self._parts = [data]
            self._frame_ts = timestamp
            self._frame_arrival = arrival
            self._frame_valid = True
        elif self._frame_valid and timestamp == self._frame_ts:
            self._parts.append(data)
            if arrival < self._frame_arrival:  # it waited behind a gap
                self._frame_arrival = arrival
            if len(self._parts) > MAX_FRAME_PACKETS:
                self._lost()
        else:
            self._frame_valid = False  # the middle of a frame whose start was lost
            self._parts = []
        self._after_marker = marker
        self._after_skip = False
        if marker and self._frame_valid:
            parts = self._parts
            frame = parts[0] if len(parts) == 1 else b"".join(parts)
            self._parts = []
            self._frame_valid = False
            keyframe = self._is_keyframe(frame)
            if self.need_keyframe and not keyframe:
                self.dropped_frames += 1
                return
            self.need_keyframe = False
            self.frames += 1
            self._emit(frame, timestamp, keyframe, self._frame_arrival)


class LossTracker:
    """Missing video sequence numbers, for NACKs (RFC 4585 generic NACK).

    :meth:`add` returns the sequence numbers to ask for now, or ``None``: all of those still
    missing when a new gap appears, and again every :data:`NACK_REPEAT_S` while some are missing
    (each at most :data:`NACK_REPEATS` more times, within the last :data:`NACK_WINDOW`).
    """

    __slots__ = ("_asked_at", "_max_seq", "_missing")

    def __init__(self) -> None:
        self._max_seq: int | None = None
        self._missing: dict[int, int] = {}  # seq -> times asked
        self._asked_at = 0.0

    @property
    def missing(self) -> list[int]:
        return sorted(self._missing)

    def add(self, seq: int, now: float) -> list[int] | None:
        max_seq = self._max_seq
        if max_seq is None:
            self._max_seq = seq
            return None
        distance = (seq - max_seq) & 0xFFFF
        missing = self._missing
        if distance == 1:
            self._max_seq = seq
            if not missing or now - self._asked_at < NACK_REPEAT_S:
                return None
        elif distance == 0:
            return None
        elif distance > MAX_JUMP and 0x10000 - distance > MAX_JUMP:  # a new origin
            missing.clear()
            self._max_seq = seq
            return None
        elif distance < 0x8000:
            for i in range(1, distance):
                missing[(max_seq + i) & 0xFFFF] = 0
            self._max_seq = seq
        else:
            missing.pop(seq, None)  # a retransmission (or a late original) arrived
            return None
        return self._ask(now)

    def _ask(self, now: float) -> list[int] | None:
        missing = self._missing
        max_seq = self._max_seq
        assert max_seq is not None
        for seq in [s for s in missing if ((max_seq - s) & 0xFFFF) > NACK_WINDOW]:
            del missing[seq]
        for seq in [s for s, asked in missing.items() if asked > NACK_REPEATS]:
            del missing[seq]
        if not missing:
            return None
        for seq in missing:
            missing[seq] += 1
        self._asked_at = now
        return sorted(missing, key=lambda s: (s - max_seq) & 0xFFFF)


#: an audio packet louder than this (in -dBov: 0 is full scale) counts as voice
LOUD_DBOV = 45
#: smoothed share of loud packets (each 20 ms) from which a participant is speaking: three
#: loud packets in a row (60 ms) reach it, a click or a cough of one packet does not
SPEAKING_SHARE = 0.5
#: quiet this long (no loud packet) and the participant has stopped speaking
SPEAKING_HANGOVER_S = 0.8


class SpeakingDetector:
    """Speaking or not, from per-packet audio levels; a change is reported once.

    :meth:`add` and :meth:`expire` return the new state when it changed, else ``None``.
    """

    __slots__ = ("_last_loud", "_share", "speaking")

    def __init__(self) -> None:
        self._share = 0.0
        self._last_loud = -1e9
        self.speaking = False

    def add(self, level: int, now: float) -> bool | None:
        loud = level <= LOUD_DBOV
        share = self._share * 0.75 + (0.25 if loud else 0.0)
        self._share = share
        if loud:
            self._last_loud = now
        if not self.speaking:
            if share >= SPEAKING_SHARE:
                self.speaking = True
                return True
            return None
        return self.expire(now)

    def expire(self, now: float) -> bool | None:
        """Stop speaking after the hangover even when no packet arrives (the track stopped)."""
        if self.speaking and now - self._last_loud >= SPEAKING_HANGOVER_S:
            self.speaking = False
            self._share = 0.0
            return False
        return None


#: what one participant may send the worker, all RTP together: a 1080p screen share and a
#: camera are well under it; beyond it packets are dropped before they are decrypted
MAX_INBOUND_BITS_PER_S = 16_000_000


class ByteBudget(TokenBucket):
    """A token bucket of bytes (``config.ratelimit``): ``rate`` a second, bursts up to ``burst``.

    ``dropped`` counts the packets refused.
    """

    __slots__ = ("dropped",)

    def __init__(self, rate: float, burst: float) -> None:
        super().__init__(rate, burst, now=0.0)  # full from the first packet on
        self.dropped = 0

    def allow(self, size: int, now: float) -> bool:
        """Whether ``size`` bytes arriving at ``now`` (monotonic s) are within the budget."""
        if self.take(size, now):
            return True
        self.dropped += 1
        return False


class RembPacer:
    """Lets a receiver's bandwidth estimate (REMB) out as libwebrtc does, not on every update.

    aiortc's receiver sends a REMB each time its estimator returns one, which is nearly every
    packet of a publisher (measured: a fifth of a worker's CPU with 50 publishers, and as many
    RTCP packets for each browser to handle). libwebrtc sends one a second, or at once when
    the estimate drops by 3 % or more (at most every 200 ms). The estimator still sees every
    packet. ``cap`` (``hooks.cap_bandwidth``) lowers what is sent to what the publisher's
    viewers can take.
    """

    INTERVAL_S = 1.0
    DROP_INTERVAL_S = 0.2

    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator
        self._sent_at = -1e9
        self._sent_bitrate = 0
        self.cap: Callable[[], int | None] | None = None
        #: the last estimate sent to the publisher, b/s
        self.sent_bitrate = 0

    def add(self, **kwargs: Any) -> tuple[int, list[int]] | None:
        remb: tuple[int, list[int]] | None = self._estimator.add(**kwargs)
        if remb is None:
            return None
        now = time.monotonic()
        since = now - self._sent_at
        if since < self.DROP_INTERVAL_S:
            return None  # (the estimator returns one for nearly every packet)
        bitrate = remb[0]
        if self.cap is not None:
            cap = self.cap()
            if cap is not None and cap < bitrate:
                bitrate = cap
        dropped = bitrate < self._sent_bitrate * 0.97
        if since >= self.INTERVAL_S or dropped:
            self._sent_at, self._sent_bitrate = now, bitrate
            self.sent_bitrate = bitrate
            return bitrate, remb[1]
        return None
