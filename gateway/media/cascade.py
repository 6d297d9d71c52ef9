"""Cascading: one room on several workers, a publisher's encoded media relayed worker to worker.

The worker that receives a publisher is that publisher's **origin**. Another worker of the
room, a **relay**, serves its own viewers of that publisher from a **link**: one WebRTC peer
connection per (relay, publisher), aiortc on both ends. The origin treats the link like a
viewer (a :class:`~gateway.media.peer.Peer` subscribed to the publisher, forwarding through
its lean send loop), the relay treats it like the publisher (a ``Peer`` registered under the
publisher's participant id, its received tracks become the room's feeds of that publisher),
so everything a worker does for a viewer or a publisher holds across the hop: no transcoding,
PLI from the relay's viewers goes up the link (rate-limited per feed at each hop) to the
origin, which asks the publisher; NACKs are answered at the nearest hop (each sender keeps
its own retransmission history); REMB caps follow the relay's viewers. Why WebRTC rather than
plain RTP between workers: docs/media.md, *Cascading*.

Bus messages of cascading (models of :mod:`signaling.bus_messages`, docs/protocol.md, *Bus*;
the hub's side is in ``signaling.placement``/``signaling.relay``):

hub → relay worker, on ``media.worker.<relay>``:
    ``relay.pull`` (:class:`~signaling.bus_messages.RelayPull`) {session_id, publisher,
    origin}: serve ``publisher`` here from worker ``origin`` (idempotent; a pull from a
    different origin replaces the link: the publisher re-offered on another worker after its
    origin died).

relay worker → origin worker, on ``media.worker.<origin>`` (the existing viewer commands, with
``peer`` = the link id ``relay:<relay>:<publisher>:<serial>``):
    ``peer.subscribe`` {publisher}, ``peer.offer`` {sdp, reply_to: ``media.cascade.<relay>``},
    ``peer.answer`` {sdp}, ``peer.close``.

origin worker → relay worker, on ``media.cascade.<relay>``: what the origin's ``Peer`` of the
link says, as ``WorkerReply`` models (``peer.answer``, ``peer.offer`` {sdp, tracks},
``peer.state``, ``peer.error``; the rest is ignored).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

from aiortc import RTCConfiguration

from gateway.media.peer import Peer
from gateway.media.room import Room
from signaling import bus_messages as B

logger = logging.getLogger(__name__)

cascade_channel = B.cascade_channel
_worker_channel = B.worker_channel


class Cascade:
    """A worker's relay links: pulls publishers from their origins, routes the origins' replies.

    Args:
        worker_id: this worker's id.
        configuration: the peer connection configuration (``peer.rtc_configuration``).
        emit: queues a message for the bus.
    """

    def __init__(
        self,
        worker_id: str,
        configuration: RTCConfiguration,
        emit: Callable[[str, B.BusMessage], None],
    ) -> None:
        self.worker_id = worker_id
        self._configuration = configuration
        self._emit = emit
        self._serial = itertools.count(1)
        #: link id → (room id, publisher): which link an origin's message is about
        self.links: dict[str, tuple[str, str]] = {}

    async def pull(self, room: Room, publisher: str, origin: str) -> None:
        """Serve ``publisher`` in ``room`` from worker ``origin`` (``relay.pull``)."""
        if origin == self.worker_id:
            return  # it publishes here: nothing to relay
        existing = room.peers.get(publisher)
        if existing is not None:
            if not existing.link:
                return  # a stale pull: the publisher's own connection is here now
            if existing.origin == origin and existing.state != "failed":
                return
            logger.info(
                "room %s: %s now comes from worker %s; replacing its link",
                room.id,
                publisher,
                origin,
            )
            await room.close_peer(publisher)
        link_id = f"relay:{self.worker_id}:{publisher}:{next(self._serial)}"
        link = Peer(
            room,
            publisher,
            _worker_channel(origin),
            self._configuration,
            self._emit,
            wire_id=link_id,
            link=True,
        )
        link.origin = origin
        room.peers[publisher] = link
        self.links[link_id] = (room.id, publisher)
        logger.info("room %s: relaying %s from worker %s (%s)", room.id, publisher, origin, link_id)
        self._emit(
            _worker_channel(origin),
            B.PeerSubscribe(session_id=room.id, peer=link_id, publisher=publisher),
        )
        link.start_link(cascade_channel(self.worker_id))

    def on_origin_message(self, rooms: dict[str, Room], message: B.WorkerReply) -> None:
        """A message of an origin's peer about one of our links."""
        link_id = message.peer or ""
        where = self.links.get(link_id)
        room = rooms.get(where[0]) if where is not None else None
        link = room.peers.get(where[1]) if room is not None and where is not None else None
        if room is None or where is None or link is None or link.wire_id != link_id:
            self.links.pop(link_id, None)
            return  # a link closed or replaced meanwhile
        # the link handles the origin's offer and answer as a peer handles a client's
        if isinstance(message, B.WorkerOffer):
            link.post(
                B.PeerOffer(
                    session_id=room.id, peer=link_id, sdp=message.sdp, reply_to=link.reply_to
                )
            )
        elif isinstance(message, B.WorkerAnswer):
            link.post(B.PeerAnswer(session_id=room.id, peer=link_id, sdp=message.sdp))
        elif isinstance(message, B.PeerState) and message.state in ("closed", "failed"):
            logger.info("room %s: link %s %s at its origin", room.id, link_id, message.state)
            self.links.pop(link_id, None)
            room.request_close(where[1])
        elif isinstance(message, B.PeerError):
            logger.warning(
                "room %s: link %s: origin says %s: %s",
                room.id,
                link_id,
                message.code,
                message.message,
            )

    def forget_room(self, room_id: str) -> None:
        """The room closed here: its links are gone."""
        self.links = {k: v for k, v in self.links.items() if v[0] != room_id}
