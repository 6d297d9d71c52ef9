"""Fan-out of one published track's encoded frames to subscribers, with keyframe control.

A :class:`Feed` reads one passthrough receiver track and offers every packet to its
:class:`ForwardTrack` subscribers and recording sinks. A :class:`ForwardTrack` is the track of
one subscriber sender: a bounded queue that, when full, drops everything and waits for the next
keyframe, so a slow subscriber only ever hurts itself. Keyframes are requested upstream (PLI) when
a subscriber starts, recovers or asks, at most once per :data:`PLI_INTERVAL_S` per feed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from gateway.media.packetize import SharedPacketizer
from gateway.media.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

#: minimum spacing of keyframe requests sent upstream to one publisher track. Chrome ignores a
#: request that arrives less than 300 ms after the previous one it acted on (its encoder
#: feedback's minimum keyframe interval), so the spacing stays clear of that.
PLI_INTERVAL_S = 0.4
#: while a subscriber still waits for a keyframe, the request is repeated this often: a PLI the
#: publisher dropped (rate limit, loss, a stale SSRC) must not leave a viewer without video
KEYFRAME_RETRY_S = 1.0
#: a viewer's estimate below this is not followed (a video call needs about this much)
MIN_FOLLOWED_BITRATE = 150_000
#: per-subscriber queue bounds, in frames (2 s of 30 fps video, 2 s of 20 ms Opus)
VIDEO_QUEUE = 60
AUDIO_QUEUE = 100


class FrameSink(Protocol):
    """Receives every forwarded encoded frame of a room (implemented by ``recorder/``)."""

    def on_packet(
        self, peer: str, kind: str, packet: av.Packet[Any], arrival_wallclock: float
    ) -> None:
        """Take one encoded frame; must not block (queue it to a thread).

        Args:
            peer: the publishing participant id.
            kind: ``"audio"`` or ``"video"``.
            packet: shared with the subscribers' senders, read-only: its attributes are read
                on the calling thread, its bytes anywhere. ``pts`` in ``time_base`` (1/clock
                rate) starts at 0 for the track's first frame; ``is_keyframe`` is set.
            arrival_wallclock: ``time.time()`` when the frame's earliest packet reached the
                worker (a paced keyframe's last packet may come 100 ms or more later).
        """
        ...

    def on_track_end(self, peer: str, kind: str) -> None:
        """The publisher's track ended (left, closed, or the room closed)."""
        ...


class RoomSink(FrameSink, Protocol):
    """A :class:`FrameSink` for one room, closed when the room closes."""

    async def close(self) -> None:
        """Finish the room's files; called once, after the last ``on_track_end``."""
        ...


class ForwardTrack(MediaStreamTrack):
    """The track of one subscriber sender: forwarded packets from at most one :class:`Feed`.

    It outlives subscriptions: unsubscribing detaches it (``recv()`` then waits), and the same
    transceiver can later carry another publisher. It ends only when ``stop()`` is called
    (aiortc's sender does so when it stops).
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.maxsize = VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
        self._queue: asyncio.Queue[av.Packet[Any] | None] = asyncio.Queue(self.maxsize)
        self.feed: Feed | None = None
        #: the viewer's latest bandwidth estimate, b/s, if recent (set by the peer)
        self.estimate: Callable[[], int | None] | None = None
        self._need_keyframe = True
        self._reading = False
        #: packets handed to the sender / dropped because the queue was full / overflows
        self.sent = 0
        self.dropped = 0
        self.overflows = 0

    @property
    def queued(self) -> int:
        """Packets waiting for the sender."""
        return self._queue.qsize()

    @property
    def waiting_for_keyframe(self) -> bool:
        """Whether this subscriber's sender waits for the publisher's next keyframe.

        False before the sender starts: a keyframe then would be dropped as stale.
        """
        return self._need_keyframe and self._reading

    def attach(self, feed: Feed) -> None:
        """Start forwarding ``feed`` (detaching any previous one); waits for a keyframe.

        The keyframe is asked for once the sender reads (:meth:`recv`): one that arrived before
        would be dropped as stale, and its request would hold the feed's PLI interval against
        the request that counts.
        """
        self.detach()
        self.feed = feed
        feed.subscribers.add(self)
        self.restart(request=self._reading)

    def detach(self) -> None:
        """Stop forwarding; the sender keeps waiting for a future :meth:`attach`."""
        if self.feed is not None:
            self.feed.subscribers.discard(self)
            self.feed = None
        self._clear()

    def packed(self, packet: av.Packet[Any]) -> tuple[list[bytes], int] | None:
        """The RTP payloads of a queued frame, packetized once by its feed (or None)."""
        feed = self.feed
        if feed is None or feed.packer is None:
            return None
        return feed.packer.lookup(packet)

    def request_keyframe(self) -> None:
        """Forward a viewer's PLI/FIR upstream (rate-limited by the feed)."""
        if self.feed is not None:
            self.feed.request_keyframe()

    def offer(self, packet: av.Packet[Any]) -> None:
        """Queue a packet from the feed; never blocks."""
        if self._need_keyframe:
            if not packet.is_keyframe:
                return
            self._need_keyframe = False
        if self._queue.full():
            # Behind by a whole queue: the frames in it are stale. Drop them and restart from
            # a keyframe rather than deliver seconds of latency.
            self.dropped += self._clear()
            self.overflows += 1
            if self.kind == "video" and not packet.is_keyframe:
                self.restart()
                self.dropped += 1
                return
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet[Any]:
        """Next packet for the sender."""
        if not self._reading:
            # The sender starts only once negotiation and DTLS are done: whatever queued up
            # since the subscription is stale, begin from a fresh keyframe.
            self._reading = True
            self.restart()
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.sent += 1
        return packet

    def stop(self) -> None:
        """End the track (called by aiortc when the sender stops)."""
        if self.readyState == "live":
            self.detach()
            super().stop()
            self._queue.put_nowait(None)

    def restart(self, request: bool = True) -> None:
        """Drop what is queued; resume from the next keyframe (asked for at once if ``request``)."""
        self._clear()
        self._need_keyframe = self.kind == "video"
        if request:
            self.request_keyframe()

    def _clear(self) -> int:
        dropped = 0
        while not self._queue.empty():
            if self._queue.get_nowait() is not None:
                dropped += 1
        return dropped


class Feed:
    """One published track: reads its encoded frames and fans them out.

    Args:
        publisher: the participant id.
        kind: ``"audio"`` or ``"video"``.
        source_mid: the publisher transceiver's mid (a participant may publish two videos).
        track: a receiver track yielding :class:`av.Packet` (see ``hooks.install_passthrough``).
        send_pli: coroutine function sending one PLI upstream; returns whether it could.
        sink: where a recorded room's frames go, or ``None``.
        on_first_packet: called once when the first frame arrives.
        on_end: called once when the track ended or the feed was closed.
        codec: the track's codec (``vp8``, ``h264``, ``opus``): each frame is then packetized
            once for every subscriber (:class:`~gateway.media.packetize.SharedPacketizer`).
    """

    def __init__(
        self,
        publisher: str,
        kind: str,
        source_mid: str,
        track: MediaStreamTrack,
        send_pli: Callable[[], Awaitable[bool]],
        sink: FrameSink | None = None,
        on_first_packet: Callable[[Feed], None] | None = None,
        on_end: Callable[[Feed], None] | None = None,
        codec: str | None = None,
    ) -> None:
        self.publisher = publisher
        self.packer = SharedPacketizer(codec) if codec else None
        self.kind = kind
        self.source_mid = source_mid
        self.subscribers: set[ForwardTrack] = set()
        self.muted = False
        self.started = False
        self.frames = 0
        self.bytes = 0
        self.plis_sent = 0
        #: keyframes received, and keyframe requests repeated because a subscriber still waited
        self.keyframes = 0
        self.pli_retries = 0
        self._track = track
        self._send_pli = send_pli
        self._sink = sink
        self._on_first_packet = on_first_packet
        self._on_end = on_end
        self._pli_wanted = asyncio.Event()
        #: when the oldest unserved keyframe request was made, and the latest keyframe came
        self._wanted_since = 0.0
        self._keyframe_at = -1.0
        self._run_task = asyncio.create_task(self._run(), name=f"feed-{publisher}-{kind}")
        self._pli_task: asyncio.Task[None] | None = None
        if kind == "video":
            self._pli_task = asyncio.create_task(self._pli_loop(), name=f"pli-{publisher}")
        self.ended = asyncio.Event()
        #: whether the publisher is asked to send no more than its viewers can take
        self.follow_viewers = True

    def downstream_cap(self) -> int | None:
        """What this track's viewers can take (b/s): the lowest recent estimate, if followed.

        ``None`` when nobody said or :attr:`follow_viewers` is off (a training: one viewer's
        poor link must not lower the picture for everyone). Never below
        :data:`MIN_FOLLOWED_BITRATE`.
        """
        if not self.follow_viewers:
            return None
        lowest: int | None = None
        for sub in self.subscribers:
            estimate = sub.estimate() if sub.estimate is not None else None
            if estimate is not None and (lowest is None or estimate < lowest):
                lowest = estimate
        return max(lowest, MIN_FOLLOWED_BITRATE) if lowest is not None else None

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe soon (at most one PLI per ``PLI_INTERVAL_S``)."""
        if self._pli_task is not None and not self._pli_wanted.is_set():
            self._wanted_since = time.monotonic()
            self._pli_wanted.set()

    def set_sink(self, sink: FrameSink | None) -> None:
        """Start or stop recording this track mid-session (the recorder starts on a keyframe)."""
        old, self._sink = self._sink, sink
        if old is not None and old is not sink and self.started:
            try:
                old.on_track_end(self.publisher, self.kind)
            except Exception:
                logger.exception("sink failed at track end of %s/%s", self.publisher, self.kind)
        if sink is not None and self.started:
            self.request_keyframe()

    def set_muted(self, muted: bool) -> None:
        """Stop (or resume) forwarding; subscribers restart from a keyframe on resume."""
        if muted == self.muted:
            return
        self.muted = muted
        if not muted:
            for sub in list(self.subscribers):
                sub.restart()

    async def close(self) -> None:
        """Stop reading and detach every subscriber; idempotent."""
        await cancel_and_wait(self._run_task, self._pli_task)
        self._end()

    def _end(self) -> None:
        if self.ended.is_set():
            return
        self.ended.set()
        if self._pli_task is not None:
            self._pli_task.cancel()  # awaited by close()
        for sub in list(self.subscribers):
            sub.detach()
        if self._sink is not None and self.started:
            try:
                self._sink.on_track_end(self.publisher, self.kind)
            except Exception:
                logger.exception("sink failed at track end of %s/%s", self.publisher, self.kind)
        if self._on_end is not None:
            self._on_end(self)

    async def _run(self) -> None:
        # Frames come through push() when the receiver delivers them directly (the worker's
        # lean receivers); the track then only says when it ended.
        try:
            while True:
                try:
                    packet = await self._track.recv()
                except MediaStreamError:
                    break
                assert isinstance(packet, av.Packet), "feed track must be a passthrough track"
                self._take(packet, time.time())
        except Exception:
            logger.exception("feed %s/%s failed; forwarding of it stops", self.publisher, self.kind)
        finally:
            self._end()

    def push(self, packet: av.Packet[Any], arrival: float) -> None:
        """Take one frame from the receiver, synchronously (no task wake-up per frame).

        ``arrival``: the wall clock when the frame's earliest packet arrived.
        """
        if self.ended.is_set():
            return
        try:
            self._take(packet, arrival)
        except Exception:
            logger.exception("feed %s/%s failed; forwarding of it stops", self.publisher, self.kind)
            self._run_task.cancel()
            self._end()

    def _take(self, packet: av.Packet[Any], arrival: float) -> None:
        if not self.started:
            self.started = True
            self.request_keyframe()
            if self._on_first_packet is not None:
                self._on_first_packet(self)
        self.frames += 1
        self.bytes += packet.size
        if packet.is_keyframe and self.kind == "video":
            self.keyframes += 1
            self._keyframe_at = time.monotonic()
        # the record keeps what was said even while the moderator muted it for others
        if self._sink is not None:
            self._to_sink(packet, arrival)
        if self.muted or not self.subscribers:
            return
        if self.packer is not None:
            self.packer.pack(packet)
        for sub in self.subscribers:
            sub.offer(packet)

    def _to_sink(self, packet: av.Packet[Any], arrival: float) -> None:
        assert self._sink is not None
        try:
            # the same packet the senders read (the recorder muxes a packet of its own made
            # from its bytes)
            self._sink.on_packet(self.publisher, self.kind, packet, arrival)
        except Exception:
            logger.exception(
                "sink failed on %s/%s; recording of it stops", self.publisher, self.kind
            )
            self._sink = None

    def _keyframe_awaited(self) -> bool:
        return (
            self.started
            and not self.muted
            and any(sub.waiting_for_keyframe for sub in self.subscribers)
        )

    async def _pli_loop(self) -> None:
        # A keyframe request is not fire-and-forget: the publisher may drop it (Chrome acts on
        # at most one per 300 ms), and a subscriber waiting for a keyframe forwards nothing, so
        # its viewer never asks by itself. Repeat while a subscriber still waits.
        while True:
            try:
                await asyncio.wait_for(self._pli_wanted.wait(), KEYFRAME_RETRY_S)
            except TimeoutError:
                if not self._keyframe_awaited():
                    continue
                self.pli_retries += 1
                logger.debug("feed %s/%s: keyframe request repeated", self.publisher, self.kind)
            else:
                if self._keyframe_at > self._wanted_since and not self._keyframe_awaited():
                    # a burst of joins: the keyframe asked for by the first one, during the
                    # interval, already started the others; no PLI per viewer
                    self._pli_wanted.clear()
                    continue
            self._pli_wanted.clear()
            try:
                sent = await self._send_pli()
            except ConnectionError:
                sent = False
            if sent:
                self.plis_sent += 1
            else:
                self._pli_wanted.set()  # no RTP yet: retry after the interval
            await asyncio.sleep(PLI_INTERVAL_S)
