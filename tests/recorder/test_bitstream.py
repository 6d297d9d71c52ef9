"""Header parsing the recorder relies on, checked against real encoder output."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from recorder.bitstream import h264_dimensions, h264_is_keyframe, opus_duration_ms, vp8_dimensions
from recorder.participant import TrackClock


def _encode(codec: str, width: int, height: int) -> list[av.Packet]:
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    packets = []
    for i in range(3):
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([i * 40 + 20]) * plane.buffer_size)
        frame.pts = i
        packets.extend(ctx.encode(frame))
    packets.extend(ctx.encode(None))
    return packets


def test_vp8_keyframe_dimensions() -> None:
    packets = _encode("libvpx", 352, 288)
    assert vp8_dimensions(bytes(packets[0])) == (352, 288)
    assert vp8_dimensions(bytes(packets[1])) is None  # interframe


def test_h264_sps_dimensions_with_cropping() -> None:
    if "libx264" not in av.codecs_available:
        pytest.skip("PyAV built without libx264")
    packets = _encode("libx264", 640, 360)  # 360 = 23 macroblocks minus 8 rows of cropping
    assert h264_is_keyframe(bytes(packets[0]))
    assert h264_dimensions(bytes(packets[0])) == (640, 360)


def test_opus_packet_duration() -> None:
    assert opus_duration_ms(bytes([0b11111000])) == 20.0  # CELT FB 20 ms, one frame
    assert opus_duration_ms(bytes([0b01001001])) == 40.0  # SILK 20 ms, two frames


def test_rtp_timestamps_unwrap_across_32_bits() -> None:
    clock = TrackClock(resync_ms=5000)
    start = (1 << 32) - 3000
    positions = [clock.to_ms((start + i * 3000) & 0xFFFFFFFF, 1 / 90, i * 33.3) for i in range(5)]
    assert positions == [0, 33, 67, 100, 133]
    # A timestamp jump (new source without a track end) re-anchors to the wall clock.
    assert clock.to_ms((start + 0x40000000) & 0xFFFFFFFF, 1 / 90, 200.0) == 200
