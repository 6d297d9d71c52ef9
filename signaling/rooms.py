"""Rooms: this hub's view of the rooms it has members in, and what happens in them.

Room-wide changes travel as operations on the bus channel ``room.<session>``, which every hub
with members in that room applies (:meth:`Rooms.on_message`): events delivered to an audience,
kicks, admissions, role changes, a publisher's arrival or departure, the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from config import errors
from records import items, sessions
from records.enums import AdmissionState, ParticipantRole, SessionKind, SessionState
from records.lookup import format_code
from records.policy import STAFF_ROLES, may_publish, should_subscribe
from signaling import bus_messages as B
from signaling import events as E
from signaling.bus import Subscription
from signaling.turn import turn_credentials
from signaling.views import hidden_roles, participant_json, session_brief

if TYPE_CHECKING:
    from signaling.services import Services

logger = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class RoomLocal:
    """This hub's view of a room it has members in."""

    session_id: str
    kind: SessionKind
    members: set[str]
    subscription: Subscription
    task: asyncio.Task[None]
    attendance_dirty: bool = False


class Rooms:
    """The rooms this hub has members in."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.local: dict[str, RoomLocal] = {}

    async def join_channel(self, s: sessions.SessionInfo, pid: str) -> None:
        """Count ``pid`` among this hub's members of ``s``; subscribe to the room's channel."""
        room = self.local.get(s.id)
        if room is None:
            sub = await self.services.bus.subscribe(B.room_channel(s.id))
            task = self.services.spawn(
                self.services.consume(sub, B.ROOM_OPS.validate_python, self.on_message),
                f"room-{s.id}",
            )
            room = RoomLocal(s.id, s.kind, set(), sub, task)
            self.local[s.id] = room
        room.members.add(pid)

    def drop_member(self, session_id: str, pid: str) -> None:
        """``pid`` is gone from this hub; the last one gone unsubscribes the room's channel."""
        room = self.local.get(session_id)
        if room is not None:
            room.members.discard(pid)
            if not room.members:
                self.local.pop(session_id, None)
                room.task.cancel()
                self.services.spawn(room.subscription.close(), f"room-unsub-{session_id}")

    async def close(self) -> None:
        """Unsubscribe every room channel (the hub is closing)."""
        for room in list(self.local.values()):
            await room.subscription.close()

    async def op(self, op: B.RoomOp) -> None:
        """Publish a room operation to every hub with members in the room."""
        await self.services.bus.publish(B.room_channel(op.session_id), op)

    async def event(self, session_id: str, event: E.HubEvent, audience: str = "all") -> None:
        """Deliver ``event`` to the room's members in ``audience``, on every hub."""
        await self.op(B.RoomEvent(session_id=session_id, event=event, audience=audience))

    async def snapshot_of(self, session_id: str, pid: str) -> dict[str, Any]:
        """The snapshot participant ``pid`` sees, read from the database."""
        member = self.services.presence.members.get(pid)
        async with self.services.tx() as tx:
            if member is not None:
                s = await sessions.get_session_for(tx, session_id, member.principal.ref)
                me = next((p for p in s.participants if p.id == pid), None)
            else:
                me = None
            if me is None:
                me = await sessions.get_participant(tx, pid)
                s = await sessions.get_session_for(tx, session_id, me.principal_ref)
            present = await sessions.session_participants(
                tx,
                session_id,
                present_only=True,
                exclude_roles=hidden_roles(s.kind),
                include_ids=[pid],
            )
        return self.snapshot(s, me, present)

    def snapshot(
        self,
        s: sessions.SessionInfo,
        me: sessions.ParticipantInfo,
        present: Sequence[sessions.ParticipantInfo],
    ) -> dict[str, Any]:
        """What a client sees of a room on joining: the session, itself, the others, the lobby."""
        pid = me.id
        visible = [participant_json(p) for p in present if p.admission is AdmissionState.ADMITTED]
        return {
            "session": session_brief(s),
            "participant": participant_json(me),
            "participants": visible,
            "lobby": [participant_json(p) for p in present if p.admission is AdmissionState.LOBBY]
            if me.role in STAFF_ROLES
            else [],
            "recording": s.recorded and s.state is SessionState.LIVE,
            "ice_servers": self._ice_servers(pid),
        }

    def _ice_servers(self, pid: str) -> list[dict[str, Any]]:
        settings = self.services.settings
        servers: list[dict[str, Any]] = [
            {
                "urls": list(x.urls),
                **({"username": x.username, "credential": x.credential} if x.username else {}),
            }
            for x in settings.ice_servers
        ]
        if settings.turn_secret and settings.turn_urls:
            username, password = turn_credentials(
                settings.turn_secret, pid, settings.turn_ttl_s, time.time()
            )
            servers.append(
                {
                    "urls": list(settings.turn_urls),
                    "username": username,
                    "credential": password,
                }
            )
        return servers

    async def on_message(self, msg: B.RoomOp) -> None:
        """Apply a room operation published by any hub (this one included)."""
        services = self.services
        presence = services.presence
        members = presence.members
        session_id = msg.session_id
        if isinstance(msg, B.RoomEvent):
            self.deliver(session_id, msg.event, msg.audience)
        elif isinstance(msg, B.MemberResumed):
            pid = msg.participant
            member = members.get(pid)
            if member is not None and msg.hub != services.hub_id:
                # resumed on another hub: stop our window timer and forget the member here,
                # and close a connection of ours that still held it (one live connection)
                if member.conn is not None:
                    member.conn.participants.pop(member.session_id, None)
                    presence.supersede(member.conn, member.session_id)
                presence.forget(pid)
        elif isinstance(msg, B.MemberKicked):
            pid = msg.participant
            member = members.get(pid)
            if member is not None:
                if member.conn is not None:
                    member.conn.send(E.SessionRemoved(session=member.session_id, reason=msg.reason))
                    member.conn.participants.pop(member.session_id, None)
                presence.forget(pid)
        elif isinstance(msg, B.Published):
            await services.relay.subscribe_members_to(session_id, msg.participant, msg.role)
        elif isinstance(msg, B.MemberAdmitted):
            pid = msg.participant
            member = members.get(pid)
            if member is not None:
                member.admitted = True
                if member.conn is not None:
                    snapshot = await self.snapshot_of(member.session_id, pid)
                    # the snapshot's "session" is the brief; the event's "session" is the id
                    snapshot["session_info"] = snapshot.pop("session")
                    member.conn.send(
                        E.Admission(session=member.session_id, state="admitted", **snapshot)
                    )
        elif isinstance(msg, B.RoleChanged):
            pid = msg.participant
            member = members.get(pid)
            if member is not None:
                member.role = ParticipantRole(msg.role)
                await services.relay.send(
                    B.PeerPermit(
                        session_id=member.session_id,
                        peer=pid,
                        may_publish=may_publish(member.role),
                    )
                )
        elif isinstance(msg, B.Unpublished):
            # a demoted speaker: the viewers here stop receiving its media
            publisher = msg.participant
            room = self.local.get(session_id)
            kind = room.kind if room is not None else SessionKind.TRAINING
            for pid in list(room.members) if room is not None else []:
                member = members.get(pid)
                if member is None or pid == publisher or not member.media_connected:
                    continue
                if not should_subscribe(kind, member.role, ParticipantRole.VIEWER):
                    await services.relay.send(
                        B.PeerUnsubscribe(
                            session_id=member.session_id, peer=pid, publisher=publisher
                        )
                    )
        elif isinstance(msg, B.RoomEnded):
            for pid, member in list(members.items()):
                if member.session_id == session_id:
                    if member.conn is not None:
                        member.conn.participants.pop(session_id, None)
                    presence.forget(pid)
        elif isinstance(msg, B.AttendanceChanged):
            room = self.local.get(session_id)
            if room is not None:
                room.attendance_dirty = True

    def deliver(self, session_id: str, event: E.HubEvent, audience: str) -> None:
        """Send ``event`` to this hub's members of the room who are in ``audience``."""
        room = self.local.get(session_id)
        if room is None:
            return
        members = self.services.presence.members
        for pid in list(room.members):
            member = members.get(pid)
            if member is None or member.conn is None:
                continue
            if audience == "staff" and member.role not in STAFF_ROLES:
                continue
            if audience == "speakers" and member.role not in (
                *STAFF_ROLES,
                ParticipantRole.SPEAKER,
            ):
                continue
            if audience.startswith("participant:") and audience[12:] != pid:
                continue
            if audience == "admitted" and not member.admitted:
                continue
            member.conn.send(event)

    async def leave(self, session_id: str, pid: str, reason: str) -> None:
        """Participant ``pid`` leaves; the last one out of a live session ends it."""
        services = self.services
        view = await services.run(sessions.leave_session, session_id, pid, reason)
        s, p, nobody_left = view.session, view.participant, view.nobody_left
        await services.relay.send(B.PeerClose(session_id=session_id, peer=pid))
        if s.kind is SessionKind.TRAINING and p.role is ParticipantRole.VIEWER:
            await self.op(B.AttendanceChanged(session_id=session_id))
        else:
            await self.event(
                session_id,
                E.ParticipantLeft(session=session_id, participant=pid, reason=reason),
            )
        services.presence.forget(pid)
        if s.state is SessionState.LIVE and nobody_left:
            # the last two may leave at once, or someone ended it meanwhile: then it is over
            with contextlib.suppress(errors.InvalidTransition):
                await self.end(s, "everyone left", actor="hub")

    async def end(self, s: sessions.SessionInfo, reason: str, actor: str) -> None:
        """End the session: its worker closes the room, every member gets the receipt."""
        services = self.services
        async with services.tx() as tx:
            ended = await sessions.set_state(tx, s.id, SessionState.ENDED, reason)
            await sessions.log_event(tx, s.id, "ended", actor=actor, data={"reason": reason})
        await services.relay.send(B.RoomClose(session_id=s.id))
        await services.placement.release(s.id)
        services.relay.room_workers.pop(s.id, None)
        lookup_code = None
        if ended.item_id:
            async with services.tx() as tx:
                with contextlib.suppress(errors.NotFound):
                    lookup_code = format_code((await items.get_item(tx, ended.item_id)).lookup_code)
        receipt = {
            "session": s.id,
            "kind": s.kind.value,
            "ended_at": ended.ended_at.isoformat() if ended.ended_at else None,
            "item_id": ended.item_id,
            "lookup_code": lookup_code,  # 查询码, printed on the receipt
            "reference": s.id[:8].upper(),
        }
        await self.event(s.id, E.SessionEnded(session=s.id, reason=reason, receipt=receipt))
        await self.op(B.RoomEnded(session_id=s.id))

    async def remove_invitee(self, session_id: str, invite_id: str) -> None:
        """Remove whoever joined ``session_id`` with invite ``invite_id`` (it was revoked)."""
        services = self.services
        async with services.tx() as tx:
            s = await sessions.get_session(tx, session_id)
        for p in s.participants:
            if p.principal_ref == f"invite:{invite_id}" and p.left_at is None:
                async with services.tx() as tx:
                    await sessions.participant_left(tx, p.id, "invite_revoked")
                    await sessions.log_event(
                        tx, s.id, "left", participant_id=p.id, data={"reason": "invite_revoked"}
                    )
                await services.relay.send(B.PeerClose(session_id=s.id, peer=p.id))
                await self.op(
                    B.MemberKicked(session_id=s.id, participant=p.id, reason="invite_revoked")
                )
                await self.event(
                    s.id,
                    E.ParticipantLeft(session=s.id, participant=p.id, reason="invite_revoked"),
                )

    async def attendance_loop(self) -> None:
        """Tell a training's staff its attendance per unit, at most once a second."""
        members = self.services.presence.members
        while True:
            await asyncio.sleep(1.0)
            for room in list(self.local.values()):
                if not room.attendance_dirty:
                    continue
                room.attendance_dirty = False
                staff = [
                    m for pid in room.members if (m := members.get(pid)) and m.role in STAFF_ROLES
                ]
                if not staff:
                    continue
                try:
                    counts = await self.services.run(
                        sessions.attendance,
                        room.session_id,
                        (ParticipantRole.VIEWER, ParticipantRole.SPEAKER),
                    )
                except errors.GatewayError as exc:
                    logger.warning("attendance of %s: %s", room.session_id, exc)
                    continue
                per_unit = {str(unit or 0): n for unit, n in counts.items()}
                event = E.Attendance(
                    session=room.session_id,
                    total=sum(per_unit.values()),
                    units=per_unit,
                )
                for m in staff:
                    if m.conn is not None:
                        m.conn.send(event)
