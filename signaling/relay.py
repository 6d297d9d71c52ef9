"""The media relay: messages to the worker serving a room, and the workers' replies.

The hub passes SDP and ICE through untouched. A participant's worker is found through
:class:`~signaling.placement.Placement` (its own worker, else the room's home); the worker
replies on ``hub.<hub id>``, peer by peer (:meth:`MediaRelay.on_worker_message`). A
subscription across workers first asks the subscriber's worker to pull the publisher from
its origin (``relay.pull``, gateway/media/cascade.py); a relay left empty is closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from records import sessions
from records.enums import ParticipantRole, SessionKind
from records.policy import should_subscribe
from signaling import protocol as P
from signaling.bus import Message

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

    async def send(self, session_id: str, message: dict[str, Any]) -> None:
        """Send ``message`` to the worker serving its peer (else the room's home), if placed.

        ``room.close`` goes to every worker of the room; ``peer.subscribe`` across workers is
        preceded by ``relay.pull``; ``peer.close`` releases a relay it leaves empty.
        """
        placement = self.services.placement
        bus = self.services.bus
        mtype = message.get("type")
        home = await placement.current(session_id)
        if mtype == "room.close":
            for relay in await placement.relays(session_id):
                await bus.publish(f"media.worker.{relay}", message)
            await placement.forget_room(session_id)
        peer = message.get("peer")
        worker = home
        if isinstance(peer, str):
            worker = await placement.worker_of(session_id, peer) or home
        if worker is None:
            return
        if mtype == "peer.subscribe":
            origin = await placement.worker_of(session_id, str(message.get("publisher")))
            if origin is not None and origin != worker:
                await bus.publish(
                    f"media.worker.{worker}",
                    {
                        "type": "relay.pull",
                        "room": session_id,
                        "publisher": message["publisher"],
                        "origin": origin,
                    },
                )
        await bus.publish(f"media.worker.{worker}", message)
        if mtype == "peer.close" and isinstance(peer, str):
            self.peer_workers.pop(peer, None)
            empty = await placement.peer_left(session_id, peer)
            if empty is not None:
                await bus.publish(
                    f"media.worker.{empty}", {"type": "room.close", "room": session_id}
                )

    async def close_elsewhere(self, session_id: str, worker: str, close: dict[str, Any]) -> None:
        """Close a participant's old peer on ``worker`` (it reconnects to another one).

        ``worker`` may be a relay left empty by it: then its room closes.
        """
        bus = self.services.bus
        await bus.publish(f"media.worker.{worker}", close)
        if await self.services.placement.release_if_empty(session_id, worker):
            await bus.publish(f"media.worker.{worker}", {"type": "room.close", "room": session_id})

    async def on_worker_message(self, msg: Message) -> None:
        """A media worker's message about one of this hub's peers."""
        services = self.services
        mtype = msg.get("type")
        pid = str(msg.get("peer", ""))
        member = services.presence.members.get(pid)
        if member is None:
            return
        conn = member.conn
        if mtype == "peer.answer" and conn:
            conn.send(
                P.event(
                    "media.answer",
                    session=member.session_id,
                    sdp=msg["sdp"],
                    tracks=msg.get("tracks", []),
                )
            )
        elif mtype == "peer.offer" and conn:
            conn.send(
                P.event(
                    "media.offer",
                    session=member.session_id,
                    sdp=msg["sdp"],
                    tracks=msg.get("tracks", []),
                )
            )
        elif mtype == "peer.tracks":
            async with services.tx() as tx:
                await sessions.set_participant(tx, pid, publishing=True)
            await services.rooms.op(
                member.session_id,
                {
                    "op": "published",
                    "session_id": member.session_id,
                    "participant": pid,
                    "role": member.role.value,
                },
            )
            await services.rooms.participant_event(
                member, "media.published", kinds=msg.get("kinds", [])
            )
        elif mtype == "peer.state":
            state = msg.get("state")
            if state == "connected" and not member.media_connected:
                member.media_connected = True
                await self._subscribe_to_publishers(member)
            if conn:
                conn.send(P.event("media.state", session=member.session_id, state=state))
        elif mtype == "peer.stats":
            stats = msg.get("stats", {})
            member.stats = dict(stats) if isinstance(stats, dict) else {}
            await services.rooms.participant_event(
                member, "media.stats", "staff", stats=member.stats
            )
        elif mtype == "peer.speaking":
            # a training's viewers are not told (thousands of them; they watch the trainer)
            audience = "speakers" if member.kind is SessionKind.TRAINING else "admitted"
            speaking = msg.get("speaking") is True
            await services.rooms.participant_event(
                member, "media.speaking", audience, speaking=speaking
            )
        elif mtype == "peer.error" and conn:
            conn.send(
                P.error(None, P.MEDIA_UNAVAILABLE, str(msg.get("message", "media error"))[:300])
            )

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
                    s.id,
                    {
                        "type": "peer.subscribe",
                        "room": s.id,
                        "peer": member.participant_id,
                        "publisher": p.id,
                    },
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
                    session_id,
                    {
                        "type": "peer.subscribe",
                        "room": session_id,
                        "peer": pid,
                        "publisher": publisher,
                    },
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
                    m.conn.send(P.event("media.lost", session=session_id, reason=reason))
