"""The only module that touches private names of aiortc, aioice and PyAV.

aiortc is an endpoint: every received frame goes to a decoder thread and every sender encodes.
An SFU must forward encoded frames instead (MEDIA.md). These hooks make that possible, per
instance, so that other peer connections in the same process (test clients, a verifying
viewer) keep decoding and encoding normally:

* :func:`install_passthrough` gives one receiver a lean packet handler
  (:class:`_LeanReceiver`): complete encoded frames become :class:`av.Packet` objects on the
  receiver's track, on the event loop, without a decoder or aiortc's jitter buffer (frame
  assembly, loss repair and NACKs are in ``rtp_in.py``).
* :func:`install_fast_receive` takes a peer connection's incoming RTP off aiortc's transport
  task: each datagram is demultiplexed, decrypted and handed to its lean receiver in the
  socket's callback (measured: 25 recorded 1:1 rooms went from 98 % of a core at 28.8 fps to
  about 70 % at 30 fps).
* :func:`install_packetizer` gives one sender a stand-in encoder that only packetizes
  :class:`av.Packet` input (``packetize.Packetizer``: ``encode`` refuses raw frames, so no
  codec context is created), the viewer's bandwidth estimate on the way (``viewer_estimate``),
  and a leaner send loop (:func:`_forward_rtp`): per frame one clock reading and one header
  extension block, per packet a header, SRTP protection and the datagram, without the five
  nested coroutines of aiortc's path (measured: the bulk of a viewer's cost).
* :func:`on_keyframe_request` routes a viewer's PLI/FIR to a callback instead of the sender's
  (absent) encoder.
* :func:`send_pli` asks the publisher for a keyframe; :func:`cap_bandwidth` caps the
  bandwidth estimate (REMB, paced by ``rtp_in.RembPacer``) sent to it.
* :func:`on_speaking` reports when a publisher starts and stops speaking (audio levels).
* :func:`restrict_codecs` forces the room codec on a transceiver created from a remote offer.
* :func:`loopback_only` restricts ICE host candidates to 127.0.0.1 for the current context.

What does not need private names lives next door: ``rtp_in.py`` (incoming RTP over bytes)
and ``packetize.py``. ``aiortc`` and ``av`` are pinned exactly (pyproject.toml);
:func:`check_hooks` fails loudly when an upgrade removed one of the names used here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import queue
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from fractions import Fraction
from typing import Any

import aioice.ice
import aiortc
import av
import pylibsrtp
from aiortc import (
    RTCIceTransport,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    clock,
)
from aiortc.codecs import depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCDtlsTransport, RtpRouter, State
from aiortc.rtcpeerconnection import RTCPeerConnection
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTP_HISTORY_SIZE,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    wrap_rtx,
)
from aiortc.utils import random16, random32, uint16_add

from config.errors import MediaError
from gateway.media import rtp_in
from gateway.media.packetize import Packetizer
from gateway.media.rtp_in import (
    ByteBudget,
    LossTracker,
    RembPacer,
    SpeakingDetector,
    TimestampUnwrapper,
    VideoAssembler,
    is_keyframe,
    pack_nack,
    parse_rtp,
    seq_newer,
    vp8_depayload,
)

logger = logging.getLogger(__name__)

#: the versions these hooks were written and tested against
TESTED_VERSIONS = {"aiortc": "1.16.0", "av": "18.1.0"}


# (owner, function, names its code must use): the private names and the code paths using them
_REQUIRED_NAMES: tuple[tuple[Any, str, tuple[str, ...]], ...] = (
    (RTCRtpReceiver, "__init__", ("_RTCRtpReceiver__decoder_queue",)),
    (RTCRtpReceiver, "receive", ("_RTCRtpReceiver__decoder_queue", "_track", "_queue")),
    (RTCRtpReceiver, "_send_rtcp_pli", ()),
    (RTCRtpReceiver, "__init__", ("_RTCRtpReceiver__remote_bitrate_estimator",)),
    (RTCRtpReceiver, "_handle_rtp_packet", ("_RTCRtpReceiver__remote_bitrate_estimator",)),
    (RTCRtpReceiver, "_handle_rtp_packet", ("_RTCRtpReceiver__rtx_ssrc",)),
    (RTCRtpSender, "__init__", ("_RTCRtpSender__encoder",)),
    (RTCRtpSender, "_next_encoded_frame", ("_RTCRtpSender__encoder", "pack")),
    (RTCRtpSender, "_handle_rtcp_packet", ("_send_keyframe",)),
    (RTCRtpTransceiver, "__init__", ("_codecs",)),
    # the lean send loop stands in for _run_rtp and _retransmit and keeps their state
    (
        RTCRtpSender,
        "__init__",
        (
            "_RTCRtpSender__rtp_started",
            "_RTCRtpSender__rtp_exited",
            "_RTCRtpSender__rtp_header_extensions_map",
            "_RTCRtpSender__mid",
            "_RTCRtpSender__rtx_payload_type",
            "_RTCRtpSender__rtx_sequence_number",
            "_RTCRtpSender__ntp_timestamp",
            "_RTCRtpSender__rtp_timestamp",
            "_RTCRtpSender__octet_count",
            "_RTCRtpSender__packet_count",
        ),
    ),
    (RTCRtpSender, "replaceTrack", ("_RTCRtpSender__track",)),
    (RTCRtpSender, "send", ("_run_rtp",)),
    (RTCRtpSender, "_handle_rtcp_packet", ("_retransmit",)),
    (RTCRtpSender, "_run_rtp", ("_RTCRtpSender__rtp_exited", "_RTCRtpSender__octet_count")),
    (RTCDtlsTransport, "_send_rtp", ("_tx_srtp", "_state", "_RTCDtlsTransport__tx_bytes")),
    (RTCDtlsTransport, "__init__", ("_RTCDtlsTransport__tx_packets",)),
    (RTCIceTransport, "__init__", ("_connection",)),
    # the lean receive path (_LeanReceiver, install_fast_receive) stands in for these
    (
        RTCRtpReceiver,
        "__init__",
        (
            "_RTCRtpReceiver__kind",
            "_RTCRtpReceiver__codecs",
            "_RTCRtpReceiver__rtx_ssrc",
            "_RTCRtpReceiver__remote_streams",
            "_RTCRtpReceiver__active_ssrc",
            "_RTCRtpReceiver__rtcp_ssrc",
            "_RTCRtpReceiver__decoder_thread",
        ),
    ),
    (RTCRtpReceiver, "_send_rtcp", ("transport", "_send_rtp")),
    (
        RTCDtlsTransport,
        "_recv_next",
        ("_rx_srtp", "_RTCDtlsTransport__rx_bytes", "_RTCDtlsTransport__rx_packets"),
    ),
    (RTCDtlsTransport, "_handle_rtp_data", ("_rtp_header_extensions_map", "_rtp_router")),
    (aioice.ice.Connection, "__init__", ("_queue", "_protocols")),
    (aioice.ice.Connection, "data_received", ("_queue",)),
    (aioice.ice.StunProtocol, "datagram_received", ("receiver", "local_candidate")),
    (aioice.ice.Connection, "sendto", ("_nominated", "protocol", "send_data", "remote_addr")),
    (aioice.ice.StunProtocol, "send_data", ("transport", "sendto")),
)


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
    if "ssrc_table" not in vars(RtpRouter()):
        missing.append("RtpRouter.ssrc_table")
    if "_HeaderExtensionsMap__ids" not in vars(HeaderExtensionsMap()):
        missing.append("HeaderExtensionsMap.__ids")
    if missing:
        raise MediaError(
            f"passthrough hooks do not fit aiortc {aiortc.__version__} / av {av.__version__} "
            f"(written for aiortc {TESTED_VERSIONS['aiortc']} / av {TESTED_VERSIONS['av']}); "
            f"missing: {', '.join(missing)}"
        )


# --------------------------------------------------------------------------- receive side


class _PassthroughQueue(queue.Queue[Any]):
    """Stands in for a receiver's decoder input queue.

    The lean receiver (:class:`_LeanReceiver`) hands frames on itself and stands in for
    aiortc's packet handler, so only the ``None`` that tells the decoder thread to stop comes
    here (the thread then ends the track as usual).
    """

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)
        else:  # aiortc's own handler is replaced (install_passthrough): never a frame
            logger.warning("passthrough receiver got a frame from aiortc's path; dropped")


class _SeqView:
    """The two fields of an RTP packet that aiortc's ``StreamStatistics.add`` reads."""

    __slots__ = ("sequence_number", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = 0
        self.timestamp = 0


_LEAN = "_gateway_lean_receiver"
#: sources one receiver keeps (media, RTX, a few restarts); a new one beyond this evicts the
#: longest silent, so a publisher inventing SSRCs cannot grow the worker's tables
MAX_SOURCES = 8
#: how often a receiver's "last heard" time per source is refreshed (it keeps sources of the
#: last 10 s; a PLI goes to the newest)
_ACTIVE_REFRESH_S = 0.5


class _LeanReceiver:
    """Takes over a passthrough receiver's packet handling: SRTP-decrypted bytes to frames.

    What aiortc's ``RTCRtpReceiver._handle_rtp_packet`` does for a forwarding receiver, as one
    synchronous call per packet: the receiver statistics its receiver reports and ``getStats``
    read, the bandwidth estimate (REMB, paced), RTX unwrapping, NACKs for missing video packets
    (repeated while missing, across sequence wrap-arounds), and frame assembly without
    decoding (:class:`~gateway.media.rtp_in.VideoAssembler`: in order, waiting a bounded time
    for retransmissions, dropping to the next keyframe after a loss it could not repair). A
    complete frame goes to the receiver's track as an :class:`av.Packet` at once: audio is not
    held back by a jitter buffer (aiortc's holds four 20 ms frames).
    """

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        d = receiver.__dict__
        self._receiver = receiver
        self._d = d
        self.kind: str = d["_RTCRtpReceiver__kind"]
        self._codecs: dict[int, Any] = d["_RTCRtpReceiver__codecs"]
        self._rtx_ssrc: dict[int, int] = d["_RTCRtpReceiver__rtx_ssrc"]
        self._streams: dict[int, StreamStatistics] = d["_RTCRtpReceiver__remote_streams"]
        self._active: dict[int, Any] = d["_RTCRtpReceiver__active_ssrc"]
        self._active_at: dict[int, float] = {}
        self._estimator = d.get("_RTCRtpReceiver__remote_bitrate_estimator")
        self._track_queue: asyncio.Queue[Any] = receiver.track._queue  # type: ignore[attr-defined]
        self._seq_view = _SeqView()
        self._unwrap = TimestampUnwrapper()
        self._time_base = Fraction(1, 90_000)
        self._codec_name = ""
        self._last_audio_seq: int | None = None
        self._loss = LossTracker() if self.kind == "video" else None
        self._assembler = VideoAssembler(self._emit, self._is_keyframe, self._picture_lost)
        #: called when a video frame was lost for good (the feed asks for a keyframe)
        self.on_picture_loss: Callable[[], None] | None = None
        #: takes each frame at once instead of the track's queue (see :func:`deliver_frames`)
        self.consumer: Callable[[av.Packet[Any], float], None] | None = None
        self.nacks_sent = 0
        #: the negotiated header extension ids (aiortc updates this object in place)
        self._ids = _extension_ids(receiver.transport)
        self._speaking = SpeakingDetector() if self.kind == "audio" else None
        #: called with True/False when the publisher starts/stops speaking (audio levels)
        self.on_speaking: Callable[[bool], None] | None = None

    @property
    def sources(self) -> dict[int, float]:
        """SSRCs seen (media and RTX), by when they were last heard (monotonic)."""
        return self._active_at

    @property
    def assembler(self) -> VideoAssembler:
        return self._assembler

    def on_rtp(self, data: bytes, now: float) -> None:
        """Handle one decrypted RTP packet that arrived at ``now`` (``time.monotonic()``)."""
        ids = self._ids
        if self._speaking is not None:
            header = parse_rtp(data, None, ids.audio_level)
        else:
            header = parse_rtp(data, ids.abs_send_time)
        if header is None:
            return
        pt, marker, seq, ts, ssrc, start, end, abs_send_time, level = header
        if level is not None:
            self._level(level, now)
        self._on_packet(
            pt, marker, seq, ts, ssrc, data[start:end], len(data) - end, abs_send_time, now
        )

    def _level(self, level: int, now: float) -> None:
        detector = self._speaking
        if detector is not None and self._receiver._enabled:
            change = detector.add(level, now)
            if change is not None and self.on_speaking is not None:
                self.on_speaking(change)

    def expire_speaking(self, now: float) -> None:
        """Report the end of speech when the packets stopped coming (no level to see)."""
        if self._speaking is not None:
            change = self._speaking.expire(now)
            if change is not None and self.on_speaking is not None:
                self.on_speaking(change)

    async def handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """Stands in for ``RTCRtpReceiver._handle_rtp_packet`` (packets aiortc parsed)."""
        self.on_parsed(packet, time.monotonic())

    def _admit_source(self, ssrc: int, now: float) -> None:
        """A new SSRC: keep it, forgetting the longest silent one beyond MAX_SOURCES."""
        known = self._active_at
        known[ssrc] = now
        while len(known) > MAX_SOURCES:
            oldest = min(known, key=known.__getitem__)
            del known[oldest]
            self._streams.pop(oldest, None)
            self._active.pop(oldest, None)
            table = self._receiver.transport._rtp_router.ssrc_table
            if table.get(oldest) is self._receiver:
                del table[oldest]

    def on_parsed(self, packet: RtpPacket, now: float) -> None:
        """Handle a packet aiortc parsed (the first of an SSRC it routed), arrived at ``now``."""
        if packet.extensions.audio_level is not None:
            self._level(packet.extensions.audio_level[1], now)
        self._on_packet(
            packet.payload_type,
            bool(packet.marker),
            packet.sequence_number,
            packet.timestamp,
            packet.ssrc,
            packet.payload,
            packet.padding_size,
            packet.extensions.abs_send_time,
            now,
        )

    def _on_packet(
        self,
        pt: int,
        marker: bool,
        seq: int,
        ts: int,
        ssrc: int,
        payload: bytes,
        padding: int,
        abs_send_time: int | None,
        now: float,
    ) -> None:
        if not self._receiver._enabled:
            return
        codec = self._codecs.get(pt)
        if codec is None:
            return
        estimator = self._estimator
        if estimator is not None and abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=abs_send_time,
                arrival_time_ms=int(now * 1000),
                payload_size=len(payload) + padding,
                ssrc=ssrc,
            )
            if remb is not None:
                self._send_remb(remb)
        last_heard = self._active_at.get(ssrc)
        if last_heard is None or now - last_heard >= _ACTIVE_REFRESH_S:
            if last_heard is None:
                self._admit_source(ssrc, now)  # the newest: never the one evicted
            self._active_at[ssrc] = now
            self._active[ssrc] = clock.current_datetime()
        stats = self._streams.get(ssrc)
        if stats is None:
            stats = self._streams[ssrc] = StreamStatistics(codec.clockRate)
        view = self._seq_view
        view.sequence_number, view.timestamp = seq, ts
        stats.add(view)  # type: ignore[arg-type]  # reads these two fields only
        name: str = codec.name
        if name == "rtx":
            original = self._rtx_ssrc.get(ssrc)
            apt = codec.parameters.get("apt")
            if original is None or len(payload) < 2 or apt not in self._codecs:
                return
            seq = (payload[0] << 8) | payload[1]
            payload = payload[2:]
            ssrc = original
            codec = self._codecs[apt]
            name = codec.name
        if name != self._codec_name:
            self._codec_name = name
            self._time_base = Fraction(1, codec.clockRate)
        loss = self._loss
        if loss is None:  # audio: each packet is a frame; a late one is dropped
            last = self._last_audio_seq
            if last is None or seq_newer(seq, last):
                self._last_audio_seq = seq
                if payload:
                    self._emit(payload, ts, True, now)
            return
        lost = loss.add(seq, now)
        if lost:
            self._send_nack(ssrc, lost)
        if name == "VP8":
            depayloaded = vp8_depayload(payload)
            if depayloaded is None:
                return
            data, start = depayloaded
            self._assembler.push(seq, ts, marker, data, start, now)
        else:
            try:
                data = depayload(codec, payload) if payload else b""
            except ValueError:
                return
            self._assembler.push(seq, ts, marker, data, None, now)

    def _is_keyframe(self, data: bytes) -> bool:
        return is_keyframe(self._codec_name, data)

    def _emit(self, data: bytes, ts: int, keyframe: bool, arrival: float) -> None:
        if self._d.get("_RTCRtpReceiver__decoder_thread") is None:
            return  # not started, or stopped
        packet = av.Packet(data)
        pts = self._unwrap(ts)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        if self.consumer is not None:
            # the wall clock when its earliest packet arrived (``arrival`` is monotonic)
            self.consumer(packet, time.time() - (time.monotonic() - arrival))
        else:
            self._track_queue.put_nowait(packet)

    def _picture_lost(self) -> None:
        if self.on_picture_loss is not None:
            self.on_picture_loss()

    def _rtcp_ssrc(self) -> int | None:
        ssrc: int | None = self._d.get("_RTCRtpReceiver__rtcp_ssrc")
        return ssrc

    def _send_remb(self, remb: tuple[int, list[int]]) -> None:
        sender_ssrc = self._rtcp_ssrc()
        if sender_ssrc is not None:
            packet = RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=sender_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
            )
            _spawn(self._receiver._send_rtcp(packet))

    def _send_nack(self, media_ssrc: int, lost: list[int]) -> None:
        sender_ssrc = self._rtcp_ssrc()
        if sender_ssrc is not None:
            self.nacks_sent += 1
            _spawn(_send_raw_rtcp(self._receiver, pack_nack(sender_ssrc, media_ssrc, lost)))


_background: set[asyncio.Task[Any]] = set()


def _spawn(coro: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _send_raw_rtcp(receiver: RTCRtpReceiver, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        await receiver.transport._send_rtp(data)


def install_passthrough(receiver: RTCRtpReceiver) -> None:
    """Make ``receiver.track.recv()`` return encoded :class:`av.Packet` frames.

    Each packet has ``pts`` = RTP timestamp (unwrapped, from 0), ``time_base`` = 1/clock rate
    and ``is_keyframe`` set. A video track's first frame is a keyframe and after a loss that
    was not repaired the next one is (frames between are dropped). Call it from the peer
    connection's ``track`` event: that fires inside ``setRemoteDescription``, before the
    receiver starts. Packets reach it through :func:`install_fast_receive`, or through
    aiortc's own transport loop until that is installed.

    Raises:
        MediaError: if the receiver has no track yet or has already started.
    """
    track = receiver.track
    if track is None or receiver.__dict__.get("_RTCRtpReceiver__decoder_thread") is not None:
        raise MediaError(f"receiver {receiver!r} has no track or already started; too late")
    receiver.__dict__["_RTCRtpReceiver__decoder_queue"] = _PassthroughQueue()
    estimator = receiver.__dict__.get("_RTCRtpReceiver__remote_bitrate_estimator")
    if estimator is not None:
        receiver.__dict__["_RTCRtpReceiver__remote_bitrate_estimator"] = RembPacer(estimator)
    lean = _LeanReceiver(receiver)
    receiver.__dict__[_LEAN] = lean
    receiver.__dict__["_handle_rtp_packet"] = lean.handle_rtp_packet


def _lean(receiver: RTCRtpReceiver) -> _LeanReceiver:
    lean: _LeanReceiver | None = receiver.__dict__.get(_LEAN)
    if lean is None:
        raise MediaError(f"receiver {receiver!r} is not a passthrough receiver")
    return lean


def on_picture_loss(receiver: RTCRtpReceiver, callback: Callable[[], None]) -> None:
    """Call ``callback`` when a passthrough receiver lost a video frame for good."""
    _lean(receiver).on_picture_loss = callback


def deliver_frames(
    receiver: RTCRtpReceiver, consumer: Callable[[av.Packet[Any], float], None]
) -> None:
    """Hand a passthrough receiver's frames to ``consumer(packet, arrival)`` as each completes.

    ``arrival`` is the wall clock (``time.time()``) when the frame's earliest packet arrived.
    Instead of the track's queue (one task wake-up per frame for its reader); the track still
    ends as usual when the receiver stops.
    """
    _lean(receiver).consumer = consumer


def on_speaking(receiver: RTCRtpReceiver, callback: Callable[[bool], None]) -> None:
    """Call ``callback(speaking)`` when an audio publisher starts or stops speaking.

    From the ``ssrc-audio-level`` header extension (RFC 6464) browsers put on every audio
    packet; nothing is decoded. :func:`expire_speaking` ends it when the packets stop.
    """
    _lean(receiver).on_speaking = callback


def expire_speaking(receiver: RTCRtpReceiver) -> None:
    """Tell ``on_speaking``'s callback the speech ended if no loud packet came for a while."""
    lean: _LeanReceiver | None = receiver.__dict__.get(_LEAN)
    if lean is not None:
        lean.expire_speaking(time.monotonic())


def receive_counters(receiver: RTCRtpReceiver) -> dict[str, int]:
    """A passthrough video receiver's frame assembly counters (tests and statistics)."""
    lean: _LeanReceiver | None = receiver.__dict__.get(_LEAN)
    if lean is None:
        return {}
    assembler = lean.assembler
    return {
        "frames": assembler.frames,
        "dropped_frames": assembler.dropped_frames,
        "skipped_gaps": assembler.skipped_gaps,
        "nacks_sent": lean.nacks_sent,
        "sources": len(lean.sources),
    }


def _extension_ids(dtls: RTCDtlsTransport) -> HeaderExtensions:
    """The header extension ids negotiated on a transport (updated in place by aiortc)."""
    extensions_map: HeaderExtensionsMap = dtls._rtp_header_extensions_map
    ids: HeaderExtensions = extensions_map.__dict__["_HeaderExtensionsMap__ids"]
    return ids


async def start_late_senders(pc: RTCPeerConnection) -> int:
    """Start the senders of a renegotiation whose answer was applied before DTLS was up.

    aiortc starts a transceiver's sender when an answer is applied only if DTLS is connected
    by then; the worker re-offers a viewer's tracks while ICE and DTLS are still under way (to
    save a round trip on joining), so it starts those here once connected. Idempotent; returns
    how many it started.
    """
    started = 0
    local_rtp = getattr(pc, "_RTCPeerConnection__localRtp", None)
    if local_rtp is None:
        raise MediaError(f"aiortc {aiortc.__version__}: RTCPeerConnection.__localRtp is gone")
    for transceiver in pc.getTransceivers():
        sender = transceiver.sender
        if transceiver.currentDirection not in ("sendonly", "sendrecv") or sender.track is None:
            continue
        if sender.__dict__.get("_RTCRtpSender__started", True):
            continue
        await sender.send(local_rtp(transceiver))
        started += 1
    return started


def install_fast_receive(
    pc: RTCPeerConnection, on_rtp: Callable[[bytes, float], None] | None = None
) -> None:
    """Handle a peer connection's incoming RTP as each datagram arrives, below aiortc.

    aiortc queues every datagram for the DTLS transport's task, which parses it into an
    ``RtpPacket`` and awaits the receiver's handler: a queue, a task wake-up and several
    coroutines per packet (MEDIA.md). Installed here instead, in the ICE connection's datagram
    callback: SRTP is removed and the packet goes straight to its receiver's
    :class:`_LeanReceiver` (``install_passthrough``), or to ``on_rtp(data, monotonic time)``
    when given (a bench client counting frames). DTLS, SRTCP and packets of receivers without
    the lean handler still take aiortc's path. Call it after ``setLocalDescription`` (the ICE
    sockets exist then); calling it again is harmless.
    """
    for dtls in _dtls_transports(pc):
        _install_fast_receive(dtls, on_rtp)


def _dtls_transports(pc: RTCPeerConnection) -> set[RTCDtlsTransport]:
    transports = {t.receiver.transport for t in pc.getTransceivers()}
    if pc.sctp is not None:  # a data channel alone: media added later is bundled onto it
        transports.add(pc.sctp.transport)
    return transports


def _install_fast_receive(
    dtls: RTCDtlsTransport, on_rtp: Callable[[bytes, float], None] | None
) -> None:
    connection: aioice.ice.Connection = dtls.transport._connection
    for protocol in list(connection._protocols):
        if type(protocol) is aioice.ice.StunProtocol and "datagram_received" not in vars(protocol):
            protocol.datagram_received = functools.partial(  # type: ignore[method-assign]
                _demux_datagram, protocol, protocol.datagram_received
            )
    if "data_received" in vars(connection):
        return
    queue_put = connection._queue.put_nowait
    router: RtpRouter = dtls._rtp_router
    ssrc_table = router.ssrc_table
    dd = dtls.__dict__
    monotonic = time.monotonic
    rate = rtp_in.MAX_INBOUND_BITS_PER_S / 8
    budget = ByteBudget(rate, burst=rate)  # a second's worth
    dd[_BUDGET] = budget
    warned_at = -1e9

    def data_received(data: bytes, component: int) -> None:
        nonlocal warned_at
        srtp = dtls._rx_srtp
        if srtp is None or not (127 < data[0] < 192) or (191 < data[1] < 209):
            queue_put((data, component))  # DTLS, SRTCP, or before the handshake
            return
        dd["_RTCDtlsTransport__rx_bytes"] += len(data)
        dd["_RTCDtlsTransport__rx_packets"] += 1
        now = monotonic()
        if not budget.allow(len(data), now):
            if now - warned_at > 10:
                warned_at = now
                logger.warning(
                    "a peer sends more than %d b/s: %d packets dropped so far",
                    rtp_in.MAX_INBOUND_BITS_PER_S,
                    budget.dropped,
                )
            return
        try:
            plain = srtp.unprotect(data)
        except pylibsrtp.Error:
            return  # not authentic, or a replay: aiortc drops it too
        if on_rtp is not None:
            on_rtp(plain, now)
            return
        ssrc = int.from_bytes(plain[8:12], "big") if len(plain) >= 12 else -1
        receiver = ssrc_table.get(ssrc)
        lean = receiver.__dict__.get(_LEAN) if receiver is not None else None
        if lean is not None:
            lean.on_rtp(plain, now)
            return
        _route_slowly(dtls, router, plain, now)

    connection.data_received = data_received  # type: ignore[method-assign]


_BUDGET = "_gateway_inbound_budget"


def inbound_dropped(pc: RTCPeerConnection) -> int:
    """RTP packets dropped because the peer sent more than its inbound budget."""
    return sum(
        budget.dropped
        for t in _dtls_transports(pc)
        if (budget := t.__dict__.get(_BUDGET)) is not None
    )


def _demux_datagram(
    protocol: aioice.ice.StunProtocol,
    original: Callable[[bytes, tuple[Any, ...]], None],
    data: bytes,
    addr: tuple[Any, ...],
) -> None:
    """RFC 7983 demultiplexing before aioice tries (and fails) to parse RTP as STUN."""
    if data and 127 < data[0] < 192:
        protocol.receiver.data_received(data, protocol.local_candidate.component)
    else:
        original(data, addr)


def _route_slowly(dtls: RTCDtlsTransport, router: RtpRouter, plain: bytes, now: float) -> None:
    """A packet of an SSRC not yet known: routed by aiortc (mid, payload type)."""
    try:
        packet = RtpPacket.parse(plain, dtls._rtp_header_extensions_map)
    except ValueError:
        return
    receiver = router.route_rtp(packet)
    if receiver is None:
        return
    lean = receiver.__dict__.get(_LEAN)
    if lean is not None:
        lean.on_parsed(packet, now)
    else:
        _spawn(receiver._handle_rtp_packet(packet, arrival_time_ms=clock.current_ms()))


def cap_bandwidth(receiver: RTCRtpReceiver, cap: Callable[[], int | None]) -> None:
    """Send the publisher of ``receiver`` at most ``cap()`` b/s as its REMB (None: no cap).

    With no simulcast, a publisher sending more than a viewer's link takes only congests that
    link: in a 1:1 visit or a small conference the publisher should follow its viewers.
    """
    pacer = receiver.__dict__.get("_RTCRtpReceiver__remote_bitrate_estimator")
    if isinstance(pacer, RembPacer):
        pacer.cap = cap


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


def install_packetizer(sender: RTCRtpSender, codec_name: str) -> None:
    """Make ``sender`` packetize encoded frames without ever creating an encoder.

    Its track's ``recv()`` must return :class:`av.Packet` with ``pts`` and ``time_base`` set.
    The sender's RTP loop becomes :func:`_forward_rtp` (call this before ``send()`` starts it:
    from the transceiver's creation, as ``gateway/media/peer.py`` does).
    """
    sender.__dict__["_RTCRtpSender__encoder"] = Packetizer(codec_name)
    history: dict[int, bytes] = {}
    sender.__dict__["_run_rtp"] = functools.partial(_forward_rtp, sender, history)
    sender.__dict__["_retransmit"] = functools.partial(_retransmit, sender, history)


_RTP_HEADER = struct.Struct("!BBHLL")
_EXTENSION_HEADER = struct.Struct("!HH")


#: seconds from the NTP epoch (1900) to the Unix epoch (1970)
_NTP_UNIX_OFFSET = 2_208_988_800


def _ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (aiortc's ``clock.current_ntp_time``, cheaper)."""
    now = time.time() + _NTP_UNIX_OFFSET
    seconds = int(now)
    return (seconds << 32) | int((now - seconds) * (1 << 32))


def _extension_template(extensions_map: Any, mid: str | None) -> tuple[bytes, bytes, bool]:
    """The header extension block of this sender as (before, after) the 3 abs-send-time bytes.

    Built once through aiortc's own ``HeaderExtensionsMap.set`` (with two abs-send-time values,
    to find where they go), so the ids negotiated with this viewer are used as aiortc would.
    The flag says whether abs-send-time is present (else ``before`` is the whole block).
    """
    blocks = []
    for value in (0, 0xFFFFFF):
        values = HeaderExtensions()
        values.abs_send_time = value
        values.mid = mid
        profile, extension = extensions_map.set(values)
        blocks.append(
            _EXTENSION_HEADER.pack(profile, len(extension) >> 2) + extension if extension else b""
        )
    zero, ones = blocks
    at = next((i for i in range(len(zero)) if zero[i] != ones[i]), -1)
    if at < 0:
        return zero, b"", False
    return zero[:at], zero[at + 3 :], True


async def _forward_rtp(sender: RTCRtpSender, history: dict[int, bytes], codec: Any) -> None:
    """``RTCRtpSender._run_rtp`` (aiortc 1.16.0) for already encoded frames, leaner.

    The same packets (payload type, sequence numbers from a random start, timestamps from a
    random origin, marker on a frame's last packet, abs-send-time and mid extensions), the same
    sender report state, a history for NACK retransmissions (unprotected bytes), the same exit
    (the track stopped, ``rtp_exited`` set). Differences: one clock reading and one extension
    block per frame (its packets leave together), a frame's payloads packetized once for all
    subscribers when the track offers them (``track.packed(frame)``, see
    :class:`SharedPacketizer`), and datagrams handed straight to the nominated ICE pair's socket.
    """
    d = sender.__dict__
    d["_RTCRtpSender__rtp_started"].set()
    packetizer: Packetizer = d["_RTCRtpSender__encoder"]
    before, after, has_send_time = _extension_template(
        d["_RTCRtpSender__rtp_header_extensions_map"], d["_RTCRtpSender__mid"]
    )
    first = 0x90 if before else 0x80  # version 2, extension bit when there is a block
    payload_type = codec.payloadType
    ssrc = sender._ssrc
    # below 32768 avoids a wrap-around early in the stream (aiortc's random_sequence_number)
    sequence_number = random16() % 32768
    timestamp_origin = random32()
    pack_header = _RTP_HEADER.pack
    try:
        while True:
            track = d["_RTCRtpSender__track"]
            if not track:
                await asyncio.sleep(0.02)
                continue
            data = await track.recv()
            if not sender._enabled:
                continue
            lookup = getattr(track, "packed", None)
            packed = lookup(data) if lookup is not None else None
            payloads, timestamp = packed if packed is not None else packetizer.pack(data)
            packetizer.packets += packed is not None
            if not payloads:
                continue
            timestamp = (timestamp_origin + timestamp) & 0xFFFFFFFF
            ntp = _ntp_now()
            if has_send_time:
                extension = before + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") + after
            else:
                extension = before
            dtls: RTCDtlsTransport = sender.transport  # per frame: BUNDLE may swap it
            if dtls._state != State.CONNECTED:
                raise ConnectionError("Cannot send encrypted RTP, not connected")
            protect = dtls._tx_srtp.protect
            sendto, send_turn = _datagram_sender(dtls)
            last = len(payloads) - 1
            sent_bytes = octets = 0
            for i, payload in enumerate(payloads):
                raw = (
                    pack_header(
                        first,
                        (0x80 if i == last else 0) | payload_type,
                        sequence_number,
                        timestamp,
                        ssrc,
                    )
                    + extension
                    + payload
                )
                history[sequence_number % RTP_HISTORY_SIZE] = raw
                protected = protect(raw)
                if sendto is not None:
                    sendto(protected)
                else:
                    await send_turn(protected)
                sent_bytes += len(protected)
                octets += len(payload)
                sequence_number = (sequence_number + 1) & 0xFFFF
            dd = dtls.__dict__
            dd["_RTCDtlsTransport__tx_bytes"] += sent_bytes
            dd["_RTCDtlsTransport__tx_packets"] += len(payloads)
            d["_RTCRtpSender__ntp_timestamp"] = ntp
            d["_RTCRtpSender__rtp_timestamp"] = timestamp
            d["_RTCRtpSender__octet_count"] += octets
            d["_RTCRtpSender__packet_count"] += len(payloads)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:
        # rtp_exited must be set whatever happened, or RTCRtpSender.stop() waits forever
        logger.exception("forwarding sender %s stopped", ssrc)
    track = d["_RTCRtpSender__track"]
    if track:
        track.stop()
        d["_RTCRtpSender__track"] = None
    d["_RTCRtpSender__encoder"] = None
    d["_RTCRtpSender__rtp_exited"].set()


def _datagram_sender(
    dtls: RTCDtlsTransport,
) -> tuple[Callable[[bytes], None] | None, Callable[[bytes], Awaitable[None]]]:
    """How to send one protected datagram on the DTLS transport's nominated ICE pair.

    A host or server-reflexive pair: the UDP transport's ``sendto``, called synchronously (what
    aioice's coroutines end in). A TURN relay: its protocol's own coroutine.
    """
    connection = dtls.transport._connection
    pair = connection._nominated.get(1)
    if pair is None:
        raise ConnectionError("Cannot send data, not connected")
    protocol, addr = pair.protocol, pair.remote_addr
    send_turn = functools.partial(protocol.send_data, addr=addr)
    transport = getattr(protocol, "transport", None)
    if type(protocol) is aioice.ice.StunProtocol and transport is not None:
        return functools.partial(transport.sendto, addr=addr), send_turn
    return None, send_turn


async def _retransmit(
    sender: RTCRtpSender, history: dict[int, bytes], sequence_number: int
) -> None:
    """``RTCRtpSender._retransmit`` over the unprotected bytes :func:`_forward_rtp` keeps."""
    raw = history.get(sequence_number % RTP_HISTORY_SIZE)
    if raw is None:
        return
    d = sender.__dict__
    extensions_map = d["_RTCRtpSender__rtp_header_extensions_map"]
    packet = RtpPacket.parse(raw, extensions_map)
    if packet.sequence_number != sequence_number:
        return
    rtx_payload_type = d["_RTCRtpSender__rtx_payload_type"]
    if rtx_payload_type is not None:
        rtx_sequence_number = d["_RTCRtpSender__rtx_sequence_number"]
        packet = wrap_rtx(
            packet,
            payload_type=rtx_payload_type,
            sequence_number=rtx_sequence_number,
            ssrc=sender._rtx_ssrc,
        )
        d["_RTCRtpSender__rtx_sequence_number"] = uint16_add(rtx_sequence_number, 1)
    await sender.transport._send_rtp(packet.serialize(extensions_map))


#: a viewer's bandwidth estimate older than this is not followed any more
VIEWER_ESTIMATE_TTL_S = 5.0


def viewer_estimate(sender: RTCRtpSender) -> int | None:
    """The bandwidth (b/s) the viewer of a forwarding sender last said it can take, if recent.

    Browsers send it as REMB (RTCP) about once a second; aiortc's sender passes it to the
    packetizer's ``target_bitrate``.
    """
    encoder = sender.__dict__.get("_RTCRtpSender__encoder")
    remb = encoder.remb if isinstance(encoder, Packetizer) else None
    if remb is None or time.monotonic() - remb[1] > VIEWER_ESTIMATE_TTL_S:
        return None
    return remb[0]


def packetized_count(sender: RTCRtpSender) -> int | None:
    """Frames packed by a sender's packetizer, or ``None`` if it has a real encoder (or none)."""
    encoder = sender.__dict__.get("_RTCRtpSender__encoder")
    return encoder.packets if isinstance(encoder, Packetizer) else None


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


# ---- the network between peers, for tests and benches -------------------------------------
#
# Tests lose, delay or inject packets "as the network would" and send RTCP a browser would
# send; those reach aiortc's private transport methods, so they live here too.

#: a DTLS transport's RTP path: ``(data, arrival_time_ms)`` in, ``data`` out
RtpIn = Callable[[bytes, int], Awaitable[None]]
RtpOut = Callable[[bytes], Awaitable[None]]


def wrap_rtp_in(dtls: RTCDtlsTransport, wrap: Callable[[RtpIn], RtpIn]) -> None:
    """Route the decrypted RTP a transport delivers to its receivers through ``wrap(original)``."""
    dtls.__dict__["_handle_rtp_data"] = wrap(dtls._handle_rtp_data)


def wrap_rtp_out(dtls: RTCDtlsTransport, wrap: Callable[[RtpOut], RtpOut]) -> None:
    """Route the RTP a transport sends (before SRTP) through ``wrap(original)``."""
    dtls.__dict__["_send_rtp"] = wrap(dtls._send_rtp)


async def send_raw_rtp(dtls: RTCDtlsTransport, data: bytes) -> None:
    """Send one serialised RTP packet on a transport (protected and sent as aiortc would)."""
    await dtls._send_rtp(data)


def rtp_header_extensions(dtls: RTCDtlsTransport) -> HeaderExtensionsMap:
    """The header extension map a transport parses incoming RTP with."""
    extensions: HeaderExtensionsMap = dtls._rtp_header_extensions_map
    return extensions


def rtp_router(dtls: RTCDtlsTransport) -> RtpRouter:
    """The transport's SSRC → receiver router."""
    router: RtpRouter = dtls._rtp_router
    return router


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[Any]:
    """The codecs negotiated on a transceiver (``RTCRtpCodecParameters``)."""
    return list(transceiver._codecs)


async def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrc: int) -> None:
    """Send a REMB of ``bitrate`` for ``media_ssrc`` from this receiver, as a browser would.

    aiortc's own estimator is switched off on this receiver first, so only this estimate is sent.
    """
    d = receiver.__dict__
    d["_RTCRtpReceiver__remote_bitrate_estimator"] = None
    remb = pack_remb_fci(bitrate, [media_ssrc])
    await receiver._send_rtcp(
        RtcpPsfbPacket(
            fmt=RTCP_PSFB_APP, ssrc=d["_RTCRtpReceiver__rtcp_ssrc"], media_ssrc=0, fci=remb
        )
    )
