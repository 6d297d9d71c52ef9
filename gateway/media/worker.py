"""The media worker: serves rooms on bus messages, forwarding encoded media without transcoding.

Bus protocol: the models of :mod:`signaling.bus_messages` (all with ``type`` and
``session_id``, the room; peer messages with ``peer``), documented in docs/protocol.md, *Bus*:

hub → worker, on ``media.worker.<worker_id>`` (``WorkerCommand``):
    ``room.open``, ``room.close``, ``room.record``, ``peer.offer``, ``peer.answer``,
    ``peer.candidate``, ``peer.subscribe`` / ``peer.unsubscribe``, ``peer.permit``,
    ``peer.mute``, ``peer.close``; ``peer.offer`` may carry ``open``, the room.open fields
    of a relay, used if the room is not open yet.

worker → hub, on the peer's ``reply_to`` (``WorkerReply``):
    ``peer.answer`` / ``peer.offer`` (with the mid → publisher map), ``peer.tracks``,
    ``peer.state``, ``peer.stats``, ``peer.speaking`` (from the audio levels the publisher's
    packets carry), ``peer.error``.

Cascading (``relay.pull`` and the worker-to-worker link messages on ``media.cascade.<id>``):
``gateway/media/cascade.py``.

Heartbeat: ``bus.heartbeat(worker_id, {rooms, peers, tracks, cpu_pct}, ttl_s=5)`` every second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import psutil
import pydantic
from aiortc import RTCIceServer

from config.errors import GatewayError, MediaError
from gateway.media import hooks
from gateway.media.cascade import Cascade
from gateway.media.forward import RoomSink
from gateway.media.peer import Peer, rtc_configuration
from gateway.media.room import Room
from gateway.media.tasks import cancel_and_wait
from signaling import bus_messages as B
from signaling.bus import Bus

logger = logging.getLogger(__name__)

Message = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class FromOrigin:
    """What the origin worker of one of this worker's relay links says (``media.cascade``)."""

    reply: B.WorkerReply


Inbound = B.WorkerCommand | FromOrigin
#: ``(room, codec, meta) -> RoomSink``; meta is the ``meta`` of ``room.open`` (kind, unit...)
SinkFactory = Callable[[str, str, dict[str, Any]], RoomSink]

CODECS = ("vp8", "h264")
#: a worker silent this long is dead. Heartbeats come every second; 4 s (not 5) leaves room
#: for the hub's 0.25 s check so a dead worker is noticed within 5 s of its death.
HEARTBEAT_TTL_S = 4.0


worker_channel = B.worker_channel


class MediaWorker:
    """Serves rooms placed on this worker by the hub, over the bus.

    Args:
        bus: the message bus (memory or Redis).
        worker_id: this worker's id; it listens on ``media.worker.<worker_id>``.
        ice_servers: STUN/TURN servers for the worker's connections; an empty list is fine
            (never ``None``, which in aiortc means a public STUN server).
        ice_loopback_only: gather only 127.0.0.1 host candidates (tests, single-machine demos).
        sink_factory: ``(room, codec, meta) -> RoomSink``, called for rooms opened with
            ``record: true``; ``None`` disables recording.
        heartbeat_interval_s: seconds between registry heartbeats.
        stats_interval_s: seconds between ``peer.stats`` messages.
    """

    def __init__(
        self,
        bus: Bus,
        worker_id: str,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        ice_loopback_only: bool = False,
        sink_factory: SinkFactory | None = None,
        heartbeat_interval_s: float = 1.0,
        stats_interval_s: float = 2.0,
    ) -> None:
        hooks.check_hooks()
        self.bus = bus
        self.id = worker_id
        self.channel = worker_channel(worker_id)
        self.rooms: dict[str, Room] = {}
        self._configuration = rtc_configuration(list(ice_servers))
        self._loopback_only = ice_loopback_only
        self._sink_factory = sink_factory
        self._heartbeat_interval_s = heartbeat_interval_s
        self._stats_interval_s = stats_interval_s
        self._inbox: asyncio.Queue[Inbound] = asyncio.Queue()
        self._outbox: asyncio.Queue[tuple[str, B.BusMessage] | None] = asyncio.Queue()
        self._process = psutil.Process()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Any = None
        self._cascade_subscription: Any = None
        self.cascade = Cascade(worker_id, self._configuration, self._emit)
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Subscribe to the worker channel and start serving."""
        if self._tasks:
            return
        self._subscription = await self.bus.subscribe(self.channel)
        self._cascade_subscription = await self.bus.subscribe(B.cascade_channel(self.id))
        self._process.cpu_percent(None)  # first call only sets the reference point
        self._tasks = [
            asyncio.create_task(self._read_bus(), name=f"worker-{self.id}-bus"),
            asyncio.create_task(self._read_cascade(), name=f"worker-{self.id}-cascade"),
            asyncio.create_task(self._dispatch(), name=f"worker-{self.id}-dispatch"),
            asyncio.create_task(self._write_bus(), name=f"worker-{self.id}-writer"),
            asyncio.create_task(self._heartbeat(), name=f"worker-{self.id}-heartbeat"),
            asyncio.create_task(self._stats(), name=f"worker-{self.id}-stats"),
        ]
        await self._send_heartbeat()
        logger.info("media worker %s listening on %s", self.id, self.channel)

    async def close(self) -> None:
        """Stop accepting, close every room (peers are told), flush the bus; idempotent."""
        if self._closed:
            return
        self._closed = True
        reader, cascade, dispatcher, writer, heartbeat, stats = self._tasks or (None,) * 6
        for subscription in (self._subscription, self._cascade_subscription):
            if subscription is not None:
                await subscription.close()
        await cancel_and_wait(reader, cascade, dispatcher, heartbeat, stats)
        for room_id in list(self.rooms):
            await self._close_room(room_id)
        self._outbox.put_nowait(None)
        if writer is not None:
            await writer
        try:
            await self.bus.forget_worker(self.id)
        except GatewayError as exc:
            logger.warning("worker %s: could not deregister: %s", self.id, exc)

    # ------------------------------------------------------------------ load figures

    def load(self) -> Message:
        """What the heartbeat reports: rooms, peers, published tracks, process CPU %."""
        return {
            "rooms": len(self.rooms),
            "peers": sum(len(r.peers) for r in self.rooms.values()),
            "tracks": sum(len(r.feeds) for r in self.rooms.values()),
            "cpu_pct": round(self._process.cpu_percent(None), 1),
        }

    # ------------------------------------------------------------------ tasks

    async def _read_bus(self) -> None:
        if self._loopback_only:
            hooks.use_loopback_only()
        async for raw in self._subscription:
            try:
                message = B.WORKER_COMMANDS.validate_python(raw)
            except pydantic.ValidationError as exc:
                logger.warning("worker %s: malformed message %r: %s", self.id, raw, exc)
                continue
            self._inbox.put_nowait(message)

    async def _read_cascade(self) -> None:
        # the origins of this worker's relay links answer here (their "viewer" is us)
        async for raw in self._cascade_subscription:
            try:
                reply = B.WORKER_REPLIES.validate_python(raw)
            except pydantic.ValidationError as exc:
                logger.warning("worker %s: malformed origin message %r: %s", self.id, raw, exc)
                continue
            self._inbox.put_nowait(FromOrigin(reply))

    async def _dispatch(self) -> None:
        # Every peer connection is created from this task, so its context (loopback-only ICE)
        # reaches their gathering too.
        if self._loopback_only:
            hooks.use_loopback_only()
        while True:
            message = await self._inbox.get()
            if isinstance(message, FromOrigin):
                try:
                    self.cascade.on_origin_message(self.rooms, message.reply)
                except Exception:
                    logger.exception("worker %s: origin's %s failed", self.id, message.reply.type)
                continue
            try:
                await self._handle(message)
            except Exception as exc:
                logger.exception("worker %s: %s failed", self.id, message.type)
                self._error(message, "media_error", f"{message.type}: {exc}")

    async def _write_bus(self) -> None:
        while True:
            item = await self._outbox.get()
            if item is None:
                return
            channel, message = item
            try:
                await self.bus.publish(channel, message)
            except GatewayError as exc:
                logger.warning("worker %s: publish to %s failed: %s", self.id, channel, exc)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_interval_s)
            await self._send_heartbeat()

    async def _send_heartbeat(self) -> None:
        try:
            await self.bus.heartbeat(self.id, self.load(), ttl_s=HEARTBEAT_TTL_S)
        except GatewayError as exc:
            logger.warning("worker %s: heartbeat failed: %s", self.id, exc)

    async def _stats(self) -> None:
        previous: dict[tuple[str, str], tuple[float, int, int]] = {}
        while True:
            await asyncio.sleep(self._stats_interval_s)
            now = time.monotonic()
            current: dict[tuple[str, str], tuple[float, int, int]] = {}
            for room in list(self.rooms.values()):
                for peer in list(room.peers.values()):
                    if peer.state != "connected":
                        continue
                    peer.expire_speaking()
                    key = (room.id, peer.id)
                    try:
                        stats, octets, frames = await _peer_stats(peer)
                    except MediaError as exc:
                        logger.debug("worker %s: %s", self.id, exc)
                        continue
                    current[key] = (now, octets, frames)
                    if key in previous:
                        then, octets0, frames0 = previous[key]
                        elapsed = max(now - then, 1e-3)
                        stats["bitrate_kbps"] = round((octets - octets0) * 8 / 1000 / elapsed, 1)
                        stats["fps"] = round((frames - frames0) / elapsed, 1)
                        peer.send("peer.stats", stats=stats)
            previous = current

    # ------------------------------------------------------------------ messages

    def _emit(self, channel: str, message: B.BusMessage) -> None:
        self._outbox.put_nowait((channel, message))

    def _error(self, message: B.WorkerCommand, code: str, text: str) -> None:
        reply_to = message.reply_to if isinstance(message, B.PeerOffer) else None
        peer_id = getattr(message, "peer", None)
        room = self.rooms.get(message.session_id)
        peer = room.peers.get(peer_id) if room and peer_id else None
        if peer is not None:
            reply_to = peer.reply_to
        if reply_to is not None:
            self._emit(
                reply_to,
                B.PeerError(session_id=message.session_id, peer=peer_id, code=code, message=text),
            )
        else:
            logger.warning("worker %s: %s (%s)", self.id, text, code)

    async def _handle(self, message: B.WorkerCommand) -> None:
        room_id = message.session_id
        if isinstance(message, B.RoomOpen):
            await self._open_room(room_id, message)
            return
        if isinstance(message, B.RoomClose):
            await self._close_room(room_id)
            return
        if isinstance(message, B.RoomRecord):
            await self._set_recording(room_id, message.record)
            return
        room = self.rooms.get(room_id)
        if room is None and isinstance(message, B.PeerOffer) and message.open is not None:
            # a relay's viewer whose offer overtook the room.open of another hub
            await self._open_room(
                room_id, B.RoomOpen(session_id=room_id, **message.open.model_dump())
            )
            room = self.rooms.get(room_id)
        if isinstance(message, B.RelayPull):
            if room is None:
                logger.warning("worker %s: relay.pull for %s not possible", self.id, room_id)
                return
            await self.cascade.pull(room, message.publisher, message.origin)
            return
        peer_id = message.peer
        if room is None:
            self._error(message, "no_room", f"room {room_id!r} is not open on worker {self.id}")
            return
        peer = room.peers.get(peer_id)
        if isinstance(message, B.PeerOffer) and peer is not None and peer.link:
            # the publisher this worker relayed now publishes here (its origin died)
            await room.close_peer(peer_id)
            peer = None
        if isinstance(message, B.PeerOffer):
            if peer is None:
                peer = Peer(room, peer_id, message.reply_to, self._configuration, self._emit)
                room.peers[peer_id] = peer
            else:
                peer.reply_to = message.reply_to
            update = getattr(room.sink, "update_participant", None)
            if message.info is not None and callable(update):
                # names and roles for the recording's manifest
                update(peer_id, message.info.model_dump())
            peer.post(message)
        elif isinstance(message, B.PeerAnswer | B.PeerCandidate):
            if peer is None:
                self._error(message, "no_peer", f"peer {peer_id!r} has not offered yet")
            else:
                peer.post(message)
        elif isinstance(message, B.PeerSubscribe):
            room.subscribe(peer_id, message.publisher)
        elif isinstance(message, B.PeerUnsubscribe):
            room.unsubscribe(peer_id, message.publisher)
        elif isinstance(message, B.PeerMute):
            room.set_muted(peer_id, message.kind, message.muted)
        elif isinstance(message, B.PeerPermit):
            room.permit(peer_id, message.may_publish)
        else:
            await room.close_peer(peer_id)

    async def _open_room(self, room_id: str, message: B.RoomOpen) -> None:
        codec = message.codec.lower()
        if codec not in CODECS:
            logger.warning("worker %s: room %s asks for codec %r", self.id, room_id, codec)
            codec = "vp8"
        if room_id in self.rooms:
            if message.record:
                # a relay of the room becomes its home (the origin died): record from now on
                await self._set_recording(room_id, True)
            return
        meta = message.meta.model_dump() if message.meta is not None else {}
        sink = None
        if message.record and self._sink_factory is not None:
            sink = self._sink_factory(room_id, codec, meta)
        room = Room(room_id, codec, sink, self._request_close)
        room.meta = meta
        self.rooms[room_id] = room
        logger.info("worker %s: room %s open (%s, record=%s)", self.id, room_id, codec, bool(sink))

    async def _set_recording(self, room_id: str, record: bool) -> None:
        """Start or stop recording an open room (a convener's choice for calls/conferences)."""
        room = self.rooms.get(room_id)
        if room is None or self._sink_factory is None or record == (room.sink is not None):
            return
        new = self._sink_factory(room_id, room.codec, room.meta) if record else None
        old = room.set_sink(new)
        if old is not None:
            try:
                await old.close()
            except Exception:
                logger.exception("room %s: recording sink failed to close", room_id)

    async def _close_room(self, room_id: str) -> None:
        room = self.rooms.pop(room_id, None)
        self.cascade.forget_room(room_id)
        if room is not None:
            await room.close()

    def _request_close(self, room_id: str, peer_id: str) -> None:
        self._inbox.put_nowait(B.PeerClose(session_id=room_id, peer=peer_id))


async def _peer_stats(peer: Peer) -> tuple[Message, int, int]:
    """Loss and RTT from aiortc, plus octet and frame counters to derive rates from."""
    try:
        report = await peer.pc.getStats()
    except Exception as exc:  # a connection closing under us
        raise MediaError(f"stats of peer {peer.id!r}: {exc}") from exc
    lost = 0
    rtts: list[float] = []
    octets = sum(feed.bytes for feed in peer.feeds.values())
    frames = sum(feed.frames for feed in peer.feeds.values() if feed.kind == "video")
    for stat in report.values():
        if stat.type == "inbound-rtp":
            lost += max(stat.packetsLost or 0, 0)
        elif stat.type == "remote-inbound-rtp":
            lost += max(stat.packetsLost or 0, 0)
            if stat.roundTripTime is not None:
                rtts.append(stat.roundTripTime)
        elif stat.type == "outbound-rtp":
            octets += stat.bytesSent or 0
    if not peer.feeds:
        frames = sum(s.track.sent for s in peer.slots if s.track.kind == "video")
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "peer %s: rtp %s; feeds %s; slots %s",
            peer.id,
            sorted(
                (s.type, s.kind, s.ssrc, getattr(s, "packetsReceived", None) or s.packetsSent)
                for s in report.values()
                if s.type in ("inbound-rtp", "outbound-rtp")
            ),
            [(f.kind, f.source_mid, f.frames, f.plis_sent) for f in peer.feeds.values()],
            [
                (
                    s.transceiver.mid,
                    s.track.kind,
                    s.feed.publisher if s.feed else None,
                    s.track.sent,
                    s.track.queued,
                    s.track.dropped,
                )
                for s in peer.slots
            ],
        )
    stats: Message = {
        "packets_lost": lost,
        "rtt_ms": round(max(rtts) * 1000, 1) if rtts else None,
    }
    return stats, octets, frames
