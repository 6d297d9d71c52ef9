"""Packetizing already encoded frames for forwarding senders (no encoder, ever).

:class:`Packetizer` stands in for a sender's encoder (``hooks.install_packetizer`` puts it
there): it only packetizes :class:`av.Packet` input, with aiortc's own VP8/H264 payloaders, and
refuses raw frames, so no codec context is ever created per viewer. :class:`SharedPacketizer`
packetizes each frame of a published track once for all its subscribers.
"""

from __future__ import annotations

import time
from typing import Any

import av
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from config.errors import MediaError

_OPUS_CLOCK = 48_000


class Packetizer:
    """A sender 'encoder' that only packetizes already encoded :class:`av.Packet` frames."""

    def __init__(self, codec_name: str) -> None:
        name = codec_name.lower()
        self.codec_name = name
        self.packets = 0
        #: the viewer's latest bandwidth estimate (REMB) for this sender: (b/s, monotonic s)
        self.remb: tuple[int, float] | None = None
        self._video: Vp8Encoder | H264Encoder | None = None
        if name == "vp8":
            self._video = Vp8Encoder()  # holds no codec context until encode(), never called
        elif name == "h264":
            self._video = H264Encoder()
        elif name != "opus":
            raise MediaError(f"no packetizer for codec {codec_name!r}")

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise MediaError(f"forwarding sender got a raw {type(frame).__name__}; it never encodes")

    # aiortc's sender hands a viewer's REMB to its encoder's ``target_bitrate``
    @property
    def target_bitrate(self) -> int:
        return self.remb[0] if self.remb is not None else 0

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self.remb = (int(bitrate), time.monotonic())

    def pack(self, packet: av.Packet[Any]) -> tuple[list[bytes], int]:
        self.packets += 1
        if self._video is not None:
            result: tuple[list[bytes], int] = self._video.pack(packet)
            return result
        # Opus: one packet is one RTP payload
        timestamp = int((packet.pts or 0) * (packet.time_base or 0) * _OPUS_CLOCK)
        return [bytes(packet)], timestamp


class SharedPacketizer:
    """Packetizes each frame of one published track once, for all its subscribers' senders.

    The publisher's feed calls :meth:`pack` as it offers a frame (in order, so VP8 picture ids
    follow the frames); each subscriber's send loop then finds the payloads with
    :meth:`lookup`. The newest :data:`SHARED_FRAMES` frames are kept, more than a subscriber
    queue holds; a frame no longer kept is packetized by the sender itself.
    """

    SHARED_FRAMES = 128

    def __init__(self, codec_name: str) -> None:
        self._packetizer = Packetizer(codec_name)
        # id(frame) -> (frame, payloads, timestamp); the frame is held so its id stays unique
        self._frames: dict[int, tuple[Any, list[bytes], int]] = {}

    def pack(self, packet: av.Packet[Any]) -> None:
        """Packetize a frame about to be offered to subscribers."""
        payloads, timestamp = self._packetizer.pack(packet)
        frames = self._frames
        frames[id(packet)] = (packet, payloads, timestamp)
        if len(frames) > self.SHARED_FRAMES:
            del frames[next(iter(frames))]

    def lookup(self, packet: av.Packet[Any]) -> tuple[list[bytes], int] | None:
        """The payloads and RTP timestamp (from 0) of a frame :meth:`pack` saw, else None."""
        hit = self._frames.get(id(packet))
        if hit is None or hit[0] is not packet:
            return None
        return hit[1], hit[2]
