"""The media relay: messages to the worker serving a room, and the workers' replies.

The hub passes SDP and ICE through untouched. A participant's worker is found through
:class:`~signaling.placement.Placement` (its own worker, else the room's home); the worker
replies on ``hub.<hub id>``, peer by peer (:meth:`MediaRelay.on_worker_message`). A
subscription across workers first asks the subscriber's worker to pull the publisher from
its origin (``relay.pull``, gateway/media/cascade.py); a relay left empty is closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from records import sessions
from records.enums import ParticipantRole, SessionKind
from records.policy import should_subscribe
from signaling import bus_messages as B
from signaling import events as E
from signaling import protocol as P

if TYPE_CHECKING:
    from signaling.presence import Member
    from signaling.services import Services

logger = logging.getLogger(__name__)


class MediaRelay:
    """Relays between this hub's members and the media workers."""

    def __init__(self, services: Services) -> None:
        self.services = services
        #: the worker this hub last saw serving each of its rooms: a room whose worker leaves
        #: the registry is lost for this hub's members, whoever releases the placement
        self.room_workers: dict[str, str] = {}
        #: the worker serving each of this hub's members' connections (the one it offered to)
        self.peer_workers: dict[str, str] = {}

    async def send(self, message: B.WorkerCommand) -> None:
        """Send ``message`` to the worker serving its peer (else the room's home), if placed.

        ``room.close`` goes to every worker of the room; ``peer.subscribe`` across workers is
        preceded by ``relay.pull``; ``peer.close`` releases a relay it leaves empty.
        """
        placement = self.services.placement
        bus = self.services.bus
        session_id = message.session_id
        home = await placement.current(session_id)
        if isinstance(message, B.RoomClose):
            for relay in await placement.relays(session_id):
                await bus.publish(B.worker_channel(relay), message)
            await placement.forget_room(session_id)
        peer = getattr(message, "peer", None)
        worker = home
        if isinstance(peer, str):
            worker = await placement.worker_of(session_id, peer) or home
        if worker is None:
            return
        if isinstance(message, B.PeerSubscribe):
            origin = await placement.worker_of(session_id, message.publisher)
            if origin is not None and origin != worker:
                await bus.publish(
                    B.worker_channel(worker),
                    B.RelayPull(session_id=session_id, publisher=message.publisher, origin=origin),
                )
        await bus.publish(B.worker_channel(worker), message)
        if isinstance(message, B.PeerClose):
            self.peer_workers.pop(message.peer, None)
            empty = await placement.peer_left(session_id, message.peer)
            if empty is not None:
                await bus.publish(B.worker_channel(empty), B.RoomClose(session_id=session_id))

    async def close_elsewhere(self, worker: str, close: B.PeerClose) -> None:
        """Close a participant's old peer on ``worker`` (it reconnects to another one).

        ``worker`` may be a relay left empty by it: then its room closes.
        """
        bus = self.services.bus
        await bus.publish(B.worker_channel(worker), close)
        if await self.services.placement.release_if_empty(close.session_id, worker):
            await bus.publish(B.worker_channel(worker), B.RoomClose(session_id=close.session_id))

    async def on_worker_message(self, msg: B.WorkerReply) -> None:
        """A media worker's message about one of this hub's peers."""
        services = self.services
        pid = msg.peer or ""
        member = services.presence.members.get(pid)
        if member is None:
            return
        conn = member.conn
        if isinstance(msg, B.WorkerAnswer | B.WorkerOffer):
            if conn:
                event = E.MediaAnswer if isinstance(msg, B.WorkerAnswer) else E.MediaOffer
                tracks = [t.wire() for t in msg.tracks]
                conn.send(event(session=member.session_id, sdp=msg.sdp, tracks=tracks))
        elif isinstance(msg, B.PeerTracks):
            async with services.tx() as tx:
                await sessions.set_participant(tx, pid, publishing=True)
            await services.rooms.op(
                B.Published(session_id=member.session_id, participant=pid, role=member.role.value)
            )
            await services.rooms.event(
                member.session_id,
                E.MediaPublished(session=member.session_id, participant=pid, kinds=msg.kinds),
            )
        elif isinstance(msg, B.PeerState):
            if msg.state == "connected" and not member.media_connected:
                member.media_connected = True
                await self._subscribe_to_publishers(member)
            if conn:
                conn.send(E.MediaState(session=member.session_id, state=msg.state))
        elif isinstance(msg, B.PeerStats):
            member.stats = dict(msg.stats)
            await services.rooms.event(
                member.session_id,
                E.MediaStats(session=member.session_id, participant=pid, stats=member.stats),
                "staff",
            )
        elif isinstance(msg, B.PeerSpeaking):
            # a training's viewers are not told (thousands of them; they watch the trainer)
            audience = "speakers" if member.kind is SessionKind.TRAINING else "admitted"
            await services.rooms.event(
                member.session_id,
                E.MediaSpeaking(session=member.session_id, participant=pid, speaking=msg.speaking),
                audience,
            )
        elif isinstance(msg, B.PeerError) and conn:
            conn.send(P.error(None, P.MEDIA_UNAVAILABLE, msg.message[:300]))

    async def _subscribe_to_publishers(self, member: Member) -> None:
        async with self.services.tx() as tx:
            s = await sessions.get_session_for(tx, member.session_id, member.principal.ref)
            hidden = [ParticipantRole.VIEWER] if s.kind is SessionKind.TRAINING else []
            present = await sessions.session_participants(
                tx, member.session_id, present_only=True, exclude_roles=hidden
            )
        for p in present:
            if p.id == member.participant_id or not p.publishing:
                continue
            if should_subscribe(s.kind, member.role, p.role):
                await self.send(
                    B.PeerSubscribe(session_id=s.id, peer=member.participant_id, publisher=p.id)
                )

    async def subscribe_members_to(
        self, session_id: str, publisher: str, publisher_role: object
    ) -> None:
        """A new publisher: this hub's connected members who should receive it subscribe."""
        room = self.services.rooms.local.get(session_id)
        if room is None:
            return
        try:
            prole = ParticipantRole(str(publisher_role))
        except ValueError:
            return
        members = self.services.presence.members
        for pid in list(room.members):
            member = members.get(pid)
            if member is None or pid == publisher or not member.media_connected:
                continue
            if should_subscribe(room.kind, member.role, prole):
                await self.send(
                    B.PeerSubscribe(session_id=session_id, peer=pid, publisher=publisher)
                )

    def media_lost(self, session_id: str, reason: str, worker: str | None = None) -> None:
        """This hub's members of ``session_id`` lost their media: they offer again.

        With ``worker``, only the members that worker served (or that never offered).
        """
        logger.warning(
            "room %s: %s (%s); telling this hub's members", session_id, reason, worker or "all"
        )
        for m in list(self.services.presence.members.values()):
            served_by = self.peer_workers.get(m.participant_id)
            if m.session_id == session_id and (
                worker is None or served_by is None or served_by == worker
            ):
                self.peer_workers.pop(m.participant_id, None)
                m.media_connected = False
                if m.conn:
                    m.conn.send(E.MediaLost(session=session_id, reason=reason))
