"""The only module that touches private names of aiortc, aioice and PyAV.

aiortc is an endpoint: every received frame goes to a decoder thread and every sender encodes.
An SFU must forward encoded frames instead (MEDIA.md). These hooks make that possible, per
instance, so that other peer connections in the same process (test clients, a verifying
viewer) keep decoding and encoding normally:

* :func:`install_passthrough` replaces one receiver's decoder input queue: complete encoded
  frames from the jitter buffer become :class:`av.Packet` objects on the receiver's track,
  on the event loop, without a decoder.
* :func:`install_packetizer` gives one sender a stand-in encoder that only packetizes
  :class:`av.Packet` input (``encode`` refuses raw frames), so no codec context is created.
* :func:`on_keyframe_request` routes a viewer's PLI/FIR to a callback instead of the sender's
  (absent) encoder.
* :func:`send_pli` asks the publisher for a keyframe.
* :func:`restrict_codecs` forces the room codec on a transceiver created from a remote offer.
* :func:`loopback_only` restricts ICE host candidates to 127.0.0.1 for the current context.

``aiortc`` and ``av`` are pinned exactly (pyproject.toml); :func:`check_hooks` fails loudly
when an upgrade removed one of the names used here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import queue
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import aioice.ice
import aiortc
import av
from aiortc import RTCRtpCodecCapability, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from config.errors import MediaError

#: the versions these hooks were written and tested against
TESTED_VERSIONS = {"aiortc": "1.16.0", "av": "18.1.0"}

_VIDEO_CLOCK = 90_000
_OPUS_CLOCK = 48_000

# (owner, function, names its code must use): the private names and the code paths using them
_REQUIRED_NAMES: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (RTCRtpReceiver, "__init__", ("_RTCRtpReceiver__decoder_queue",)),
    (RTCRtpReceiver, "receive", ("_RTCRtpReceiver__decoder_queue", "_track", "_queue")),
    (RTCRtpReceiver, "_handle_rtp_packet", ("_RTCRtpReceiver__decoder_queue",)),
    (RTCRtpReceiver, "_send_rtcp_pli", ()),
    (RTCRtpReceiver, "_handle_rtp_packet", ("_RTCRtpReceiver__rtx_ssrc",)),
    (RTCRtpSender, "__init__", ("_RTCRtpSender__encoder",)),
    (RTCRtpSender, "_next_encoded_frame", ("_RTCRtpSender__encoder", "pack")),
    (RTCRtpSender, "_handle_rtcp_packet", ("_send_keyframe",)),
    (RTCRtpTransceiver, "__init__", ("_codecs",)),
)


#: aiortc's audio jitter buffer hands a frame on only once 4 more are queued
#: (``RTCRtpReceiver``: ``JitterBuffer(capacity=16, prefetch=4)``): 80 ms of 20 ms Opus
#: frames. Video has no prefetch. The recorder aligns tracks by arrival time, so it needs this.
AUDIO_JITTER_PREFETCH = 4
OPUS_FRAME_S = 0.020


def receive_delay_s(kind: str) -> float:
    """How long after its arrival on the wire a frame of ``kind`` reaches the feed."""
    return AUDIO_JITTER_PREFETCH * OPUS_FRAME_S if kind == "audio" else 0.0


def check_hooks() -> None:
    """Verify that every private name used by this module exists in the installed libraries.

    Raises:
        MediaError: naming the installed aiortc and av versions and the missing names.
    """
    missing: list[str] = []
    for owner, func_name, names in _REQUIRED_NAMES:
        func = getattr(owner, func_name, None)
        code = getattr(func, "__code__", None)
        if code is None:
            missing.append(f"{owner.__name__}.{func_name}")
            continue
        used = set(code.co_names)
        missing.extend(f"{owner.__name__}.{func_name} uses {n}" for n in names if n not in used)
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        missing.append("aioice.ice.get_host_addresses")
    for cls, method in ((Vp8Encoder, "pack"), (H264Encoder, "pack")):
        if not callable(getattr(cls, method, None)):
            missing.append(f"{cls.__name__}.{method}")
    if "is_keyframe" not in dir(av.Packet):
        missing.append("av.Packet.is_keyframe")
    try:
        receiver_source = inspect.getsource(RTCRtpReceiver)
    except (OSError, TypeError):
        receiver_source = ""
    if f"prefetch={AUDIO_JITTER_PREFETCH}" not in receiver_source:
        missing.append(f"RTCRtpReceiver audio JitterBuffer(prefetch={AUDIO_JITTER_PREFETCH})")
    if missing:
        raise MediaError(
            f"passthrough hooks do not fit aiortc {aiortc.__version__} / av {av.__version__} "
            f"(written for aiortc {TESTED_VERSIONS['aiortc']} / av {TESTED_VERSIONS['av']}); "
            f"missing: {', '.join(missing)}"
        )


# --------------------------------------------------------------------------- receive side


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


class _PassthroughQueue(queue.Queue[Any]):
    """Stands in for a receiver's decoder input queue.

    aiortc puts ``(codec, JitterFrame)`` here on the event loop and a decoder thread takes them.
    We turn each frame into an :class:`av.Packet` at once and hand it to the track's queue,
    so the decoder thread only ever sees the ``None`` that tells it to stop (and then ends the
    track as usual).
    """

    def __init__(self, track_queue: asyncio.Queue[Any]) -> None:
        super().__init__()
        self._track_queue = track_queue

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)
            return
        codec, frame = item
        data: bytes = frame.data
        packet = av.Packet(data)
        packet.pts = frame.timestamp
        packet.dts = frame.timestamp
        packet.time_base = Fraction(1, codec.clockRate)
        packet.is_keyframe = is_keyframe(codec.name, data)
        self._track_queue.put_nowait(packet)


def install_passthrough(receiver: RTCRtpReceiver) -> None:
    """Make ``receiver.track.recv()`` return encoded :class:`av.Packet` frames.

    Each packet has ``pts`` = RTP timestamp (unwrapped, from 0), ``time_base`` = 1/clock rate
    and ``is_keyframe`` set. Call it from the peer connection's ``track`` event: that fires
    inside ``setRemoteDescription``, before the receiver starts.

    Raises:
        MediaError: if the receiver has no track yet or has already started.
    """
    track = receiver.track
    if track is None or receiver.__dict__.get("_RTCRtpReceiver__decoder_thread") is not None:
        raise MediaError(f"receiver {receiver!r} has no track or already started; too late")
    track_queue = track._queue  # type: ignore[attr-defined]  # RemoteStreamTrack's queue
    receiver.__dict__["_RTCRtpReceiver__decoder_queue"] = _PassthroughQueue(track_queue)


def is_passthrough(receiver: RTCRtpReceiver) -> bool:
    """Whether :func:`install_passthrough` was applied to ``receiver``."""
    return isinstance(receiver.__dict__.get("_RTCRtpReceiver__decoder_queue"), _PassthroughQueue)


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Send a Picture Loss Indication for the newest source of ``receiver``.

    Returns:
        whether a PLI was sent (``False`` while no RTP has arrived yet).
    """
    # aiortc lists retransmission (RTX) SSRCs among the sources too (Chrome sends bandwidth
    # probes on its RTX SSRC); a PLI addressed to one of them is ignored by the publisher.
    rtx: dict[int, int] = receiver.__dict__.get("_RTCRtpReceiver__rtx_ssrc", {})
    sources = [s for s in receiver.getSynchronizationSources() if s.source not in rtx]
    if not sources:
        return False
    newest = max(sources, key=lambda s: s.timestamp)
    await receiver._send_rtcp_pli(newest.source)
    return True


# --------------------------------------------------------------------------- send side


class _Packetizer:
    """A sender 'encoder' that only packetizes already encoded :class:`av.Packet` frames."""

    def __init__(self, codec_name: str) -> None:
        name = codec_name.lower()
        self.codec_name = name
        self.packets = 0
        self._video: Vp8Encoder | H264Encoder | None = None
        if name == "vp8":
            self._video = Vp8Encoder()  # holds no codec context until encode(), never called
        elif name == "h264":
            self._video = H264Encoder()
        elif name != "opus":
            raise MediaError(f"no packetizer for codec {codec_name!r}")

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise MediaError(f"forwarding sender got a raw {type(frame).__name__}; it never encodes")

    def pack(self, packet: av.Packet[Any]) -> tuple[list[bytes], int]:
        self.packets += 1
        if self._video is not None:
            result: tuple[list[bytes], int] = self._video.pack(packet)
            return result
        # Opus: one packet is one RTP payload
        timestamp = int((packet.pts or 0) * (packet.time_base or 0) * _OPUS_CLOCK)
        return [bytes(packet)], timestamp


def install_packetizer(sender: RTCRtpSender, codec_name: str) -> None:
    """Make ``sender`` packetize encoded frames without ever creating an encoder.

    Its track's ``recv()`` must return :class:`av.Packet` with ``pts`` and ``time_base`` set.
    """
    sender.__dict__["_RTCRtpSender__encoder"] = _Packetizer(codec_name)


def packetized_count(sender: RTCRtpSender) -> int | None:
    """Frames packed by a sender's packetizer, or ``None`` if it has a real encoder (or none)."""
    encoder = sender.__dict__.get("_RTCRtpSender__encoder")
    return encoder.packets if isinstance(encoder, _Packetizer) else None


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the remote viewer sends a PLI or FIR for ``sender``."""
    sender.__dict__["_send_keyframe"] = callback


# --------------------------------------------------------------------------- codecs


def codec_preferences(kind: str, codec_name: str) -> list[RTCRtpCodecCapability]:
    """Capabilities of aiortc for ``codec_name`` (all its variants) plus RTX, for ``kind``.

    Raises:
        MediaError: if aiortc does not support the codec.
    """
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    wanted = f"{kind}/{codec_name}".lower()
    chosen = [c for c in capabilities if c.mimeType.lower() == wanted]
    if not chosen:
        raise MediaError(f"aiortc cannot send {kind} codec {codec_name!r}")
    chosen += [c for c in capabilities if c.mimeType.lower() == f"{kind}/rtx"]
    return chosen


def restrict_codecs(transceiver: RTCRtpTransceiver, codec_name: str) -> None:
    """Keep only ``codec_name`` (and its RTX) among a transceiver's negotiated codecs.

    Call it after ``setRemoteDescription(offer)`` and before ``createAnswer()``: aiortc
    computes the common codecs inside ``setRemoteDescription``, before preferences could be
    set on a transceiver it creates there.

    Raises:
        MediaError: if the remote side did not offer ``codec_name``.
    """
    wanted = f"{transceiver.kind}/{codec_name}".lower()
    kept = [c for c in transceiver._codecs if c.mimeType.lower() == wanted]
    if not kept:
        offered = sorted({c.mimeType for c in transceiver._codecs})
        raise MediaError(f"remote did not offer {wanted!r} (offered {offered})")
    payload_types = {c.payloadType for c in kept}
    kept += [
        c
        for c in transceiver._codecs
        if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in payload_types
    ]
    transceiver._codecs = kept
    transceiver.setCodecPreferences(codec_preferences(transceiver.kind, codec_name))


# --------------------------------------------------------------------------- ICE

_loopback_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "gateway_media_loopback_only", default=False
)
_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _loopback_only.get():
        return ["127.0.0.1"] if use_ipv4 else []
    assert _original_get_host_addresses is not None
    return _original_get_host_addresses(use_ipv4, use_ipv6)


def use_loopback_only() -> None:
    """From now on, in the current context (and tasks it starts), gather only 127.0.0.1.

    aioice skips 127.0.0.1 when it gathers host candidates; this selects it instead, for the
    peer connections created from this context only (others in the process are unaffected).
    Call it at the start of a task that owns peer connections.
    """
    global _original_get_host_addresses
    current = aioice.ice.get_host_addresses
    if current is not _get_host_addresses:
        _original_get_host_addresses = current
        aioice.ice.get_host_addresses = _get_host_addresses
    _loopback_only.set(True)


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Like :func:`use_loopback_only`, undone when the ``with`` block ends."""
    token = _loopback_only.set(False)
    try:
        use_loopback_only()
        yield
    finally:
        _loopback_only.reset(token)
