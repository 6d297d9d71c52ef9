"""One participant's peer connection: its published feeds, its subscription slots, negotiation.

Negotiation scheme (docs/media.md): the client sends the first offer. The worker answers, and
later re-offers on its own when subscriptions change (the worker is the impolite side: an offer
from the client that collides with a worker offer in flight is ignored; the client, polite,
rolls back and answers). All signaling of one peer runs in its own actor task, one message at a
time, and the worker offers only from the ``stable`` state: never two offers in flight.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from config.errors import MediaError
from gateway.media import hooks
from gateway.media.forward import Feed, ForwardTrack
from gateway.media.numbering import Numbering
from gateway.media.tasks import cancel_and_wait
from signaling import bus_messages as B
from signaling.messages import IceCandidate

if TYPE_CHECKING:
    from gateway.media.room import Room

logger = logging.getLogger(__name__)

Message = dict[str, Any]
#: what a peer's actor handles: the hub's messages for it, or its own timers (``_negotiate``,
#: ``_answer_due``) as small dicts
Inbound = B.PeerOffer | B.PeerAnswer | B.PeerCandidate | Message

#: what a relay link (a worker's connection to another worker's publisher) tells its origin,
#: as the origin's ``WorkerCommand``; the rest a participant's peer reports (state, tracks,
#: stats, speaking) is for a hub
LINK_MESSAGES = frozenset({"peer.offer", "peer.answer", "peer.close"})

#: a client that has not answered the worker's re-offer after this long gets it again (the
#: message may have been lost on the way, e.g. over a hub restart) ...
ANSWER_TIMEOUT_S = 5.0
#: ... and after this many offers without an answer its peer is closed with ``answer_timeout``:
#: until it answers, no subscription of it can change (offers go out only from ``stable``)
OFFER_ATTEMPTS = 3


def rtc_configuration(ice_servers: list[RTCIceServer]) -> RTCConfiguration:
    """The one peer connection configuration: the configured servers (maybe none), BUNDLE.

    ``iceServers=None`` would make aiortc use a public STUN server, so the list is always passed.
    """
    return RTCConfiguration(iceServers=list(ice_servers), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


@dataclass
class Slot:
    """A sendonly transceiver of a subscriber and the feed it currently forwards."""

    transceiver: RTCRtpTransceiver
    track: ForwardTrack
    feed: Feed | None = None


class Peer:
    """A participant of a room, with its own ``RTCPeerConnection``.

    Args:
        room: the room it belongs to.
        peer_id: the participant id.
        reply_to: bus channel for every message about this peer.
        configuration: from :func:`rtc_configuration`.
        emit: queues a message for the bus (never blocks).
        wire_id: the id its messages carry (default ``peer_id``); a relay link's differs.
        link: this is a relay worker's connection to the origin worker of publisher
            ``peer_id`` (``gateway.media.cascade``): it offers first (a data channel, as a
            viewer with nothing to publish), receives the publisher's tracks as a publisher's
            peer would, never records them and tells the origin only :data:`LINK_MESSAGES`.
    """

    def __init__(
        self,
        room: Room,
        peer_id: str,
        reply_to: str,
        configuration: RTCConfiguration,
        emit: Callable[[str, B.BusMessage], None],
        *,
        wire_id: str | None = None,
        link: bool = False,
    ) -> None:
        self.room = room
        self.id = peer_id
        self.wire_id = wire_id or peer_id
        self.link = link
        #: a link's origin worker
        self.origin: str | None = None
        self.reply_to = reply_to
        self.pc = RTCPeerConnection(configuration)
        self.feeds: dict[str, Feed] = {}  # by source mid
        self.slots: list[Slot] = []
        self.state = "new"
        #: what the hub was last told: whether this participant is speaking (audio levels)
        self.speaking = False
        self._emit = emit
        self._inbox: asyncio.Queue[Inbound] = asyncio.Queue()
        self._pending_candidates: list[IceCandidate | None] = []
        self._negotiation_needed = False
        self._closed = False
        self._offer_serial = 0  # which worker offer an answer timer belongs to
        self._offer_attempts = 0
        self._answer_timer: asyncio.TimerHandle | None = None
        #: payload types and extension ids negotiated so far; our re-offers keep them
        self.numbering = Numbering()
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self._task = asyncio.create_task(self._run(), name=f"peer-{room.id}-{peer_id}")

    # ------------------------------------------------------------------ public, sync

    def post(self, message: Inbound) -> None:
        """Queue a signaling message for this peer's actor."""
        self._inbox.put_nowait(message)

    def send(self, message_type: str, **fields: Any) -> None:
        """Send a message about this peer (a ``WorkerReply``) to its ``reply_to`` channel.

        A relay link's messages are ``WorkerCommand``s for its origin worker instead (the
        link is the origin's viewer): only :data:`LINK_MESSAGES`, without the track map.
        """
        wire = {"type": message_type, "session_id": self.room.id, "peer": self.wire_id, **fields}
        if self.link:
            if message_type not in LINK_MESSAGES:
                return
            wire.pop("tracks", None)
            self._emit(self.reply_to, B.WORKER_COMMANDS.validate_python(wire))
            return
        self._emit(self.reply_to, B.WORKER_REPLIES.validate_python(wire))

    def start_link(self, reply_to: str) -> None:
        """A relay link: offer to the origin; its answers and offers come on ``reply_to``."""
        self.post({"type": "_link_offer", "reply_to": reply_to})

    def speaking_changed(self, feed: Feed, speaking: bool) -> None:
        """Tell the hub when this participant starts or stops speaking (not while muted)."""
        speaking = speaking and not feed.muted and not feed.ended.is_set()
        if speaking != self.speaking:
            self.speaking = speaking
            self.send("peer.speaking", speaking=speaking)

    def expire_speaking(self) -> None:
        """End a speaking state whose audio packets stopped coming."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and transceiver.receiver.track is not None:
                hooks.expire_speaking(transceiver.receiver)

    def forward(self, feed: Feed) -> None:
        """Start forwarding ``feed`` to this peer (a free slot or a new transceiver)."""
        if any(slot.feed is feed for slot in self.slots):
            return
        slot = next((s for s in self.slots if s.feed is None and s.track.kind == feed.kind), None)
        if slot is None:
            track = ForwardTrack(feed.kind)
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            codec = self.room.codec if feed.kind == "video" else "opus"
            transceiver.setCodecPreferences(hooks.codec_preferences(feed.kind, codec))
            hooks.install_packetizer(transceiver.sender, codec)
            hooks.on_keyframe_request(transceiver.sender, track.request_keyframe)
            track.estimate = functools.partial(hooks.viewer_estimate, transceiver.sender)
            slot = Slot(transceiver, track)
            self.slots.append(slot)
        slot.transceiver.direction = "sendonly"
        logger.debug(
            "room %s peer %s: forward %s/%s (%s) on mid %s",
            self.room.id,
            self.id,
            feed.publisher,
            feed.kind,
            feed.source_mid,
            slot.transceiver.mid,
        )
        slot.feed = feed
        slot.track.attach(feed)
        self._need_negotiation()

    def unforward(self, feed: Feed) -> None:
        """Stop forwarding ``feed``; its transceiver goes inactive and waits for reuse."""
        for slot in self.slots:
            if slot.feed is feed:
                slot.track.detach()
                slot.feed = None
                slot.transceiver.direction = "inactive"
                self._need_negotiation()

    def track_map(self) -> list[Message]:
        """Which publisher's media each of this peer's receiving transceivers (mid) carries."""
        return [
            {
                "mid": slot.transceiver.mid,
                "publisher": slot.feed.publisher,
                "kind": slot.feed.kind,
                "source_mid": slot.feed.source_mid,
            }
            for slot in self.slots
            if slot.feed is not None and slot.transceiver.mid is not None
        ]

    async def close(self) -> None:
        """Close feeds, actor and peer connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._cancel_answer_timer()
        if self.link:
            self.send("peer.close")  # the origin closes its side (the relay's "viewer")
        if asyncio.current_task() is not self._task:
            await cancel_and_wait(self._task)
        for feed in list(self.feeds.values()):
            await feed.close()
        for slot in self.slots:
            slot.track.detach()
        await self.pc.close()
        if self.state != "closed":
            self.state = "closed"
            self.send("peer.state", state="closed")

    # ------------------------------------------------------------------ actor

    async def _run(self) -> None:
        while True:
            message = await self._inbox.get()
            kind = message["type"] if isinstance(message, dict) else message.type
            try:
                if isinstance(message, B.PeerOffer):
                    await self._handle_offer(message.sdp)
                elif isinstance(message, B.PeerAnswer):
                    await self._handle_answer(message.sdp)
                elif isinstance(message, B.PeerCandidate):
                    await self._handle_candidate(message.candidate)
                elif kind == "_negotiate":
                    pass
                elif kind == "_link_offer":
                    await self._link_offer(message["reply_to"])
                elif kind == "_answer_due":
                    self._answer_due(message["offer"])
                elif kind == "_start_senders":
                    await hooks.start_late_senders(self.pc)
                if self._negotiation_needed:
                    await self._offer()
            except (MediaError, ValueError) as exc:
                # bad SDP or candidate from the client: say so, keep the connection
                logger.warning("room %s peer %s: %s failed: %s", self.room.id, self.id, kind, exc)
                code = exc.code if isinstance(exc, MediaError) else "bad_request"
                self.send("peer.error", code=code, message=f"{kind}: {exc}")
            except Exception as exc:
                logger.exception("room %s peer %s: %s failed", self.room.id, self.id, kind)
                self.send("peer.error", code="media_error", message=f"{kind}: {exc}")

    async def _handle_offer(self, sdp: str) -> None:
        logger.debug(
            "room %s peer %s: client offer in %s\n%s",
            self.room.id,
            self.id,
            self.pc.signalingState,
            sdp,
        )
        if self.pc.signalingState == "have-local-offer":
            # glare: the worker is impolite, the client rolls back and answers our offer
            logger.info("room %s peer %s: offer collided with ours; ignored", self.room.id, self.id)
            return
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, OperationError, InvalidStateError
            raise MediaError(f"cannot apply offer: {exc}") from exc
        own = {id(slot.transceiver) for slot in self.slots}
        for transceiver in self.pc.getTransceivers():
            if id(transceiver) not in own and transceiver.receiver.track is not None:
                codec = self.room.codec if transceiver.kind == "video" else "opus"
                hooks.restrict_codecs(transceiver, codec)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        hooks.install_fast_receive(self.pc)
        # what was accepted first, then the rest of the client's numbers (kept off limits)
        self.numbering.learn(self.pc.localDescription.sdp)
        self.numbering.learn(sdp)
        logger.debug(
            "room %s peer %s: answer %s\n%s",
            self.room.id,
            self.id,
            self.track_map(),
            self.pc.localDescription.sdp,
        )
        self.send("peer.answer", sdp=self.pc.localDescription.sdp, tracks=self.track_map())
        for candidate in self._pending_candidates:
            await self._add_candidate(candidate)
        self._pending_candidates.clear()
        self.room.sync_subscriptions(self)

    async def _link_offer(self, reply_to: str) -> None:
        # a viewer with nothing to publish offers a data channel so that a transport exists;
        # the origin then re-offers with the publisher's tracks (handled as a client's offer)
        self.pc.createDataChannel("relay")
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        self.send("peer.offer", sdp=self.pc.localDescription.sdp, reply_to=reply_to)

    async def _handle_answer(self, sdp: str) -> None:
        logger.debug(
            "room %s peer %s: client answer in %s\n%s",
            self.room.id,
            self.id,
            self.pc.signalingState,
            sdp,
        )
        if self.pc.signalingState != "have-local-offer":
            raise MediaError(f"answer in signaling state {self.pc.signalingState!r}; no offer out")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except Exception as exc:
            raise MediaError(f"cannot apply answer: {exc}") from exc
        self._cancel_answer_timer()
        self.numbering.learn(sdp)
        if self.pc.connectionState == "connected":
            # a late start too: DTLS may have come up while this answer was being applied
            await hooks.start_late_senders(self.pc)

    async def _handle_candidate(self, candidate: IceCandidate | None) -> None:
        if self.pc.remoteDescription is None:
            self._pending_candidates.append(candidate)
        else:
            await self._add_candidate(candidate)

    async def _add_candidate(self, candidate: IceCandidate | None) -> None:
        if candidate is None or not candidate.candidate:
            await self.pc.addIceCandidate(None)  # end of candidates
            return
        text = candidate.candidate
        parsed = candidate_from_sdp(
            text.split(":", 1)[1] if text.startswith("candidate:") else text
        )
        parsed.sdpMid = candidate.sdpMid
        parsed.sdpMLineIndex = candidate.sdpMLineIndex
        await self.pc.addIceCandidate(parsed)

    async def _offer(self) -> None:
        # Only from stable. A viewer's first offer carries no tracks (a data channel), so its
        # tracks come in this offer: it goes out while ICE and DTLS are still under way, to
        # save a round trip on joining. aiortc starts the senders of a renegotiation only if
        # DTLS is up when the answer is applied; those answered earlier start once connected
        # (hooks.start_late_senders). Both ends of a worker-to-worker link wait for connected
        # as before.
        if self.pc.signalingState != "stable":
            return
        state = self.pc.connectionState
        early = (
            state in ("new", "connecting") and not self.link and not self.id.startswith("relay:")
        )
        if state != "connected" and not early:
            return
        self._negotiation_needed = False
        offer = await self.pc.createOffer()
        # aiortc numbers payload types and extension ids afresh in every offer; JSEP wants
        # the negotiated ones kept (numbering.py)
        sdp = self.numbering.apply(offer.sdp)
        await self.pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        logger.debug(
            "room %s peer %s: offer %s\n%s",
            self.room.id,
            self.id,
            self.track_map(),
            self.pc.localDescription.sdp,
        )
        self.send("peer.offer", sdp=self.pc.localDescription.sdp, tracks=self.track_map())
        self._offer_serial += 1
        self._offer_attempts = 1
        self._arm_answer_timer()

    def _arm_answer_timer(self) -> None:
        self._cancel_answer_timer()
        due = {"type": "_answer_due", "offer": self._offer_serial}
        self._answer_timer = asyncio.get_running_loop().call_later(ANSWER_TIMEOUT_S, self.post, due)

    def _cancel_answer_timer(self) -> None:
        if self._answer_timer is not None:
            self._answer_timer.cancel()
            self._answer_timer = None

    def _answer_due(self, offer: int) -> None:
        """No answer to our offer ``offer`` yet: send it again, or give up on the client."""
        if offer != self._offer_serial or self.pc.signalingState != "have-local-offer":
            return  # answered meanwhile
        if self._offer_attempts >= OFFER_ATTEMPTS:
            logger.warning(
                "room %s peer %s: no answer to %d offers; closing",
                self.room.id,
                self.id,
                self._offer_attempts,
            )
            self.send(
                "peer.error",
                code="answer_timeout",
                message=f"no answer to {OFFER_ATTEMPTS} offers of the worker",
            )
            self.room.request_close(self.id)
            return
        self._offer_attempts += 1
        logger.info(
            "room %s peer %s: offer unanswered; sent again (%d)",
            self.room.id,
            self.id,
            self._offer_attempts,
        )
        assert self.pc.localDescription is not None
        self.send("peer.offer", sdp=self.pc.localDescription.sdp, tracks=self.track_map())
        self._arm_answer_timer()

    def _need_negotiation(self) -> None:
        if not self._negotiation_needed:
            self._negotiation_needed = True
            self.post({"type": "_negotiate"})

    # ------------------------------------------------------------------ aiortc events

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        receiver = transceiver.receiver
        hooks.install_passthrough(receiver)
        mid = transceiver.mid or str(len(self.feeds))

        async def send_pli() -> bool:
            return await hooks.send_pli(receiver)

        feed = Feed(
            self.id,
            track.kind,
            mid,
            track,
            send_pli,
            sink=None if self.link else self.room.sink,  # recorded at its origin
            on_first_packet=self.room.on_feed_started,
            on_end=self.room.on_feed_ended,
            codec=self.room.codec if track.kind == "video" else "opus",
        )
        hooks.on_picture_loss(receiver, feed.request_keyframe)
        hooks.deliver_frames(receiver, feed.push)
        if track.kind == "audio":
            hooks.on_speaking(receiver, functools.partial(self.speaking_changed, feed))
        else:
            # a training's trainer serves many viewers: it does not follow the weakest one
            feed.follow_viewers = self.room.meta.get("kind") != "training"
            hooks.cap_bandwidth(receiver, feed.downstream_cap)
        self.feeds[mid] = feed
        logger.debug(
            "room %s peer %s: publishes %s on mid %s", self.room.id, self.id, track.kind, mid
        )
        self.room.on_feed_added(feed)

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.debug("room %s peer %s: connection %s", self.room.id, self.id, state)
        if state in ("connected", "failed") and state != self.state:
            self.state = state
            self.send("peer.state", state=state)
            if state == "connected":
                self.post({"type": "_start_senders"})
            if state == "connected" and self._negotiation_needed:
                self.post({"type": "_negotiate"})
            if state == "failed":
                # no ICE restart in aiortc: a failed connection never recovers
                self.room.request_close(self.id)
