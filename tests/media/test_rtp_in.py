"""Incoming RTP on the worker: headers, VP8 depayloading, frame assembly, loss and NACKs.

Packets are built by aiortc's own serializer and VP8 payloader (what a publisher sends), so a
disagreement between the lean parser and aiortc shows up here.
"""

from __future__ import annotations

import random

import pytest
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtcpRtpfbPacket, RtpPacket

from gateway.media import rtp_in
from gateway.media.rtp_in import (
    LossTracker,
    SpeakingDetector,
    TimestampUnwrapper,
    VideoAssembler,
    pack_nack,
    parse_rtp,
    vp8_depayload,
)

ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
MID = "urn:ietf:params:rtp-hdrext:sdes:mid"


def extensions_map() -> HeaderExtensionsMap:
    mapping = HeaderExtensionsMap()
    mapping.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=4, uri=MID),
                RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME),
            ]
        )
    )
    return mapping


@pytest.mark.parametrize("padding", [0, 7])
@pytest.mark.parametrize("csrc", [[], [11, 12]])
@pytest.mark.parametrize("abs_send_time", [None, 0xABCDEF])
def test_parse_rtp_reads_what_aiortc_serializes(padding, csrc, abs_send_time):
    packet = RtpPacket(
        payload_type=96, marker=1, sequence_number=65535, timestamp=0xFFFFFFF0, ssrc=0x1234ABCD
    )
    packet.csrc = csrc
    packet.padding_size = padding
    packet.extensions = HeaderExtensions(mid="1", abs_send_time=abs_send_time)
    packet.payload = bytes(range(50))
    data = packet.serialize(extensions_map())

    header = parse_rtp(data, 3)
    assert header is not None
    pt, marker, seq, ts, ssrc, start, end, sent, level = header
    assert (pt, marker, seq, ts, ssrc) == (96, True, 65535, 0xFFFFFFF0, 0x1234ABCD)
    assert data[start:end] == packet.payload
    assert sent == abs_send_time
    assert level is None  # not asked for
    assert parse_rtp(data, None)[7] is None  # type: ignore[index]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80" * 11,  # shorter than a header
        b"\x40" + b"\x00" * 20,  # version 1
        b"\x90" + b"\x00" * 13,  # an extension header cut short
        b"\xa0" + b"\x00" * 11 + b"\x00",  # padding of 0 bytes
    ],
)
def test_parse_rtp_refuses_malformed_packets(data):
    assert parse_rtp(data, 3) is None


@pytest.mark.parametrize("picture_id", [None, 17, 300])
@pytest.mark.parametrize("start", [True, False])
def test_vp8_depayload_strips_the_descriptor_aiortc_writes(picture_id, start):
    descriptor = VpxPayloadDescriptor(
        partition_start=int(start), partition_id=0, picture_id=picture_id, tl0picidx=5
    )
    body = b"\x10\x02\x03frame"
    data, is_start = vp8_depayload(bytes(descriptor) + body) or (b"", False)
    assert data == body
    assert is_start is start


def test_vp8_depayload_refuses_a_descriptor_without_data():
    assert vp8_depayload(b"") is None
    assert vp8_depayload(b"\x90\x80") is None


def test_timestamps_count_from_zero_across_the_wrap():
    unwrap = TimestampUnwrapper()
    assert unwrap(0xFFFFFF00) == 0
    assert unwrap(0xFFFFFFF0) == 0xF0
    assert unwrap(0x10) == 0x110
    assert unwrap(0xFFFFFFF8) == 0xF8  # a late frame from before the wrap
    assert unwrap(0x20) == 0x120


class Frames:
    def __init__(self) -> None:
        self.frames: list[tuple[bytes, int, bool]] = []
        self.arrivals: list[float] = []
        self.losses = 0

    def emit(self, data: bytes, ts: int, key: bool, arrival: float) -> None:
        self.frames.append((data, ts, key))
        self.arrivals.append(arrival)

    def lost(self) -> None:
        self.losses += 1


def assembler() -> tuple[VideoAssembler, Frames]:
    out = Frames()
    return VideoAssembler(out.emit, lambda d: d.startswith(b"K"), out.lost), out


def stream(frames: int, packets_per_frame: int, first_seq: int = 100) -> list[tuple]:
    """(seq, ts, marker, data, start) for frames K0 (key), D1, D2, ..."""
    out = []
    seq = first_seq
    for f in range(frames):
        for p in range(packets_per_frame):
            tag = ("K" if f == 0 else "D") + f"{f}." if p == 0 else f"{f}."
            out.append(
                (seq & 0xFFFF, 3000 * f, p == packets_per_frame - 1, f"{tag}{p};".encode(), p == 0)
            )
            seq += 1
    return out


def frame_bytes(f: int, packets: int) -> bytes:
    return b"".join(
        ((("K" if f == 0 else "D") + f"{f}." if p == 0 else f"{f}.") + f"{p};").encode()
        for p in range(packets)
    )


@pytest.mark.parametrize("first_seq", [100, 65530])
def test_frames_come_out_whole_in_order_across_the_sequence_wrap(first_seq):
    asm, out = assembler()
    for i, (seq, ts, marker, data, start) in enumerate(stream(5, 3, first_seq)):
        asm.push(seq, ts, marker, data, start, now=i * 0.01)  # paced: a packet each 10 ms
    assert [f[0] for f in out.frames] == [frame_bytes(f, 3) for f in range(5)]
    assert [f[1] for f in out.frames] == [0, 3000, 6000, 9000, 12000]
    assert [f[2] for f in out.frames] == [True, False, False, False, False]
    assert out.arrivals == pytest.approx([0.0, 0.03, 0.06, 0.09, 0.12])  # each first packet
    assert out.losses == 0


def test_reordered_and_duplicated_packets_still_make_each_frame_once():
    asm, out = assembler()
    packets = stream(6, 4)
    rng = random.Random(7)
    shuffled = packets[:1]  # the stream's first packet defines its origin
    for i in range(1, len(packets), 3):  # then reorder within windows of three packets
        window = packets[i : i + 3]
        rng.shuffle(window)
        shuffled += window
    shuffled.insert(5, shuffled[2])  # and one duplicate
    for seq, ts, marker, data, start in shuffled:
        asm.push(seq, ts, marker, data, start, now=0.0)
    assert [f[0] for f in out.frames] == [frame_bytes(f, 4) for f in range(6)]
    assert out.losses == 0


def test_a_retransmission_within_the_wait_repairs_the_gap():
    asm, out = assembler()
    packets = stream(6, 3)
    lost = packets.pop(4)  # the middle packet of frame 1
    for i, (seq, ts, marker, data, start) in enumerate(packets):
        asm.push(seq, ts, marker, data, start, now=i * 0.01)
    assert len(out.frames) == 1  # frames after the gap wait for it
    asm.push(*lost, now=0.2)  # the retransmission, within MAX_GAP_WAIT_S
    assert [f[0] for f in out.frames] == [frame_bytes(f, 3) for f in range(6)]
    # each frame is dated by its earliest packet, not by the retransmission it waited for
    assert out.arrivals == pytest.approx([0.0, 0.03, 0.05, 0.08, 0.11, 0.14])
    assert out.losses == 0
    assert asm.skipped_gaps == 0


def test_a_loss_not_repaired_in_time_drops_frames_until_a_keyframe():
    asm, out = assembler()
    packets = stream(4, 3)
    del packets[4]  # frame 1 loses a packet for good
    keyframe = [
        (112 + i, 3000 * 5, i == 2, (b"K5." if i == 0 else b"5.") + b"%d;" % i, i == 0)
        for i in range(3)
    ]
    now = 0.0
    for seq, ts, marker, data, start in packets + keyframe:
        asm.push(seq, ts, marker, data, start, now=now)
        now += 0.05
        if 102 <= seq < 114:  # frame 0 is out; the gap holds back everything after it
            assert len(out.frames) == 1
    # the gap opened at 0.20 s and was given up at 0.65 s (> MAX_GAP_WAIT_S)
    assert pytest.approx(0.4) == rtp_in.MAX_GAP_WAIT_S
    asm.push(115, 18000, True, b"D6.0;", True, now=now)
    assert asm.skipped_gaps == 1
    assert out.losses == 1
    # frame 0, then nothing of frames 1-3 (1 broken, 2 and 3 refer to it), then keyframe 5 and on
    assert [f[0][:3] for f in out.frames] == [b"K0.", b"K5.", b"D6."]
    assert asm.dropped_frames == 2


def test_the_first_frames_wait_for_a_keyframe():
    asm, out = assembler()
    packets = [p for p in stream(3, 2) if not p[3].startswith(b"K")]  # joined mid-frame
    for seq, ts, marker, data, start in packets:
        asm.push(seq, ts, marker, data, start, now=0.0)
    assert out.frames == []


def test_frame_starts_are_found_without_codec_help():
    asm, out = assembler()
    for seq, ts, marker, data, _start in stream(4, 3):
        asm.push(seq, ts, marker, data, None, now=0.0)
    assert [f[0] for f in out.frames] == [frame_bytes(f, 3) for f in range(4)]


def test_a_publisher_restart_is_a_new_origin():
    asm, out = assembler()
    for seq, ts, marker, data, start in stream(2, 2) + stream(2, 2, first_seq=40000):
        asm.push(seq, ts, marker, data, start, now=0.0)
    assert [f[0][:3] for f in out.frames] == [b"K0.", b"D1.", b"K0.", b"D1."]
    assert asm.skipped_gaps == 0  # nothing was waited for


def test_missing_packets_are_asked_for_again_until_they_arrive():
    loss = LossTracker()
    assert loss.add(10, 0.0) is None
    assert loss.add(11, 0.0) is None
    assert loss.add(14, 0.0) == [12, 13]
    assert loss.add(15, 0.05) is None  # not yet: the retransmission may be on its way
    assert loss.add(12, 0.06) is None
    assert loss.add(16, 0.2) == [13]  # 13 is still missing
    for i, now in enumerate([0.4, 0.6, 0.8, 1.0]):
        loss.add(17 + i, now)
    assert loss.add(21, 1.2) is None  # asked NACK_REPEATS times more: given up
    assert loss.missing == []


def test_nacks_cross_the_sequence_wrap_oldest_first():
    loss = LossTracker()
    loss.add(65533, 0.0)
    assert loss.add(2, 0.0) == [65534, 65535, 0, 1]
    parsed = RtcpRtpfbPacket.parse(pack_nack(1, 2, [65534, 65535, 0, 1])[4:], 1)
    assert parsed.lost == [65534, 65535, 65536, 65537]  # aiortc reads the bitmask from pid


def test_pack_nack_matches_aiortc_for_long_lists():
    lost = [5, 6, 9, 21, 22, 40, 100]
    ours = pack_nack(0x11, 0x22, lost)
    theirs = bytes(RtcpRtpfbPacket(fmt=1, ssrc=0x11, media_ssrc=0x22, lost=lost))
    assert ours == theirs


def test_parse_rtp_reads_the_audio_level_aiortc_writes():
    mapping = HeaderExtensionsMap()
    mapping.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri=MID),
                RTCRtpHeaderExtensionParameters(
                    id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"
                ),
            ]
        )
    )
    packet = RtpPacket(payload_type=111, sequence_number=1, timestamp=960, ssrc=7)
    packet.extensions = HeaderExtensions(mid="0", audio_level=(True, 33))
    packet.payload = b"opus"
    header = parse_rtp(packet.serialize(mapping), None, 2)
    assert header is not None
    assert header[8] == 33
    assert parse_rtp(packet.serialize(mapping), None, None)[8] is None  # type: ignore[index]


def test_speaking_starts_on_voice_not_on_a_click_and_ends_after_quiet():
    detector = SpeakingDetector()
    t = 0.0
    assert detector.add(20, t) is None  # one loud packet: a click
    changes = []
    for level in [127] * 10 + [25] * 5:
        t += 0.02
        changes.append(detector.add(level, t))
    assert changes.index(True) == 12  # the third loud packet in a row
    assert detector.speaking
    quiet = [detector.add(127, t + 0.02 * i) for i in range(1, 60)]
    assert quiet.index(False) == int(rtp_in.SPEAKING_HANGOVER_S / 0.02) - 1
    assert detector.expire(t + 10) is None  # already stopped: said once


def test_speaking_expires_without_packets():
    detector = SpeakingDetector()
    for i in range(5):
        detector.add(10, i * 0.02)
    assert detector.speaking
    assert detector.expire(0.5) is None
    assert detector.expire(0.08 + rtp_in.SPEAKING_HANGOVER_S) is False


def test_a_frame_that_never_ends_is_dropped_not_kept():
    asm, out = assembler()
    asm.push(1, 0, True, b"K0.0;", True, now=0.0)  # a keyframe, then a frame without a marker
    for i in range(rtp_in.MAX_FRAME_PACKETS + 10):
        asm.push(2 + i, 3000, False, b"x" * 10, i == 0, now=0.0)
    assert out.losses == 1
    assert len(asm._parts) < 20  # what came after the limit only
    asm.push(2 + rtp_in.MAX_FRAME_PACKETS + 10, 6000, True, b"K2.0;", True, now=0.0)
    assert [f[0][:3] for f in out.frames] == [b"K0.", b"K2."]


def test_the_inbound_budget_allows_its_rate_and_drops_the_excess():
    budget = rtp_in.ByteBudget(rate=1000, burst=1000)
    assert budget.allow(1000, now=10.0)  # a full burst
    assert not budget.allow(1, now=10.0)
    # 1000 bytes a second: over 5 s, ~5000 bytes of 100-byte packets pass out of 10,000 offered
    passed = sum(budget.allow(100, now=10.0 + i * 0.05) for i in range(100))
    assert 48 <= passed <= 51
    assert budget.dropped == 1 + 100 - passed
