"""Frame-size parsing from encoded video: VP8 keyframe headers and H264 SPS."""

from __future__ import annotations

_VP8_START_CODE = b"\x9d\x01\x2a"


def vp8_is_keyframe(data: bytes) -> bool:
    """Return whether a VP8 frame is a keyframe (bit 0 of the frame tag is 0)."""
    return len(data) > 0 and (data[0] & 1) == 0


def vp8_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header, or None for an interframe/garbage.

    RFC 6386 section 9.1: a keyframe's 3-byte tag is followed by the start code 9d 01 2a
    and two little-endian 16-bit fields whose low 14 bits are width and height.
    """
    if len(data) < 10 or not vp8_is_keyframe(data) or data[3:6] != _VP8_START_CODE:
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    if width == 0 or height == 0:
        return None
    return width, height


def _annexb_nal_units(data: bytes) -> list[bytes]:
    units: list[bytes] = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = len(data) if nxt < 0 else nxt
        unit = data[start:end]
        # A 4-byte start code leaves a trailing zero on the previous unit.
        if nxt >= 0 and unit.endswith(b"\x00"):
            unit = unit.rstrip(b"\x00")
        if unit:
            units.append(unit)
        i = nxt
    return units


def h264_is_keyframe(data: bytes) -> bool:
    """Return whether an Annex-B access unit holds an IDR slice (5) or an SPS (7)."""
    return any((unit[0] & 0x1F) in (5, 7) for unit in _annexb_nal_units(data))


class _BitReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3]  # IndexError past the end: caller handles it
        value = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _unescape(rbsp: bytes) -> bytes:
    return rbsp.replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last, nxt = 8, 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + reader.se() + 256) % 256
        last = last if nxt == 0 else nxt


_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def h264_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first SPS in an Annex-B access unit (H.264 7.3.2.1.1)."""
    for unit in _annexb_nal_units(data):
        if unit[0] & 0x1F != 7:
            continue
        try:
            return _parse_sps(_unescape(unit[1:]))
        except (IndexError, ValueError):
            return None
    return None


def _parse_sps(sps: bytes) -> tuple[int, int]:
    r = _BitReader(sps)
    profile_idc = r.bits(8)
    r.bits(16)  # constraint flags, level_idc
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = r.bit()
        r.ue()  # bit_depth_luma_minus8
        r.ue()  # bit_depth_chroma_minus8
        r.bit()  # qpprime_y_zero_transform_bypass_flag
        if r.bit():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.bit():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.bit()
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.bit()
    if not frame_mbs_only:
        r.bit()  # mb_adaptive_frame_field_flag
    r.bit()  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if r.bit():  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        if chroma_format_idc == 0 or separate_colour_plane:
            crop_x, crop_y = 1, 2 - frame_mbs_only
        else:
            crop_x = 1 if chroma_format_idc == 3 else 2
            crop_y = (2 if chroma_format_idc == 1 else 1) * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise ValueError(f"bad SPS dimensions {width}x{height}")
    return width, height


_OPUS_FRAME_MS = (10.0, 20.0, 40.0, 60.0)
_CELT_FRAME_MS = (2.5, 5.0, 10.0, 20.0)


def opus_duration_ms(data: bytes) -> float:
    """Duration of an Opus packet from its TOC byte (RFC 6716 section 3.1); 20 ms if unknown."""
    if not data:
        return 20.0
    config = data[0] >> 3
    if config < 12:
        frame = _OPUS_FRAME_MS[config % 4]
    elif config < 16:
        frame = 10.0 if config % 2 == 0 else 20.0
    else:
        frame = _CELT_FRAME_MS[config % 4]
    code = data[0] & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = data[1] & 0x3F if len(data) > 1 else 1
    return frame * max(count, 1)
