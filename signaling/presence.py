"""Presence: which connection of this hub holds which participant.

A participant is bound to one live connection at a time. Binding (a join, a resume, a
terminal's reload) attaches it here and subscribes this hub to the room's channel; a newer
connection of the same principal supersedes the older one, which is told and closed. When a
connection ends, each of its memberships waits out the resume window before it is left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from config import errors
from records import accounts, sessions
from records.enums import AdmissionState, ParticipantRole, SessionKind, SessionState
from records.principals import Principal
from records.store import Transaction
from signaling import bus_messages as B
from signaling import events as E
from signaling.connection import SUPERSEDED, Connection
from signaling.views import session_brief

if TYPE_CHECKING:
    from signaling.services import Services

logger = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class Member:
    """A participant of a session held by a connection of this hub."""

    participant_id: str
    session_id: str
    kind: SessionKind
    role: ParticipantRole
    principal: Principal
    conn: Connection | None
    admitted: bool
    leave_timer: asyncio.Task[None] | None = None
    media_connected: bool = False
    stats: dict[str, Any] = dataclasses.field(default_factory=dict)  # last peer.stats


class Presence:
    """This hub's members: bound, waiting out their resume window, superseded."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.members: dict[str, Member] = {}

    def member_of(self, conn: Connection, session_id: str) -> Member:
        """The member ``conn`` holds in ``session_id``.

        Raises:
            NotFound: the connection is not in that session.
        """
        pid = conn.participants.get(session_id)
        member = self.members.get(pid) if pid else None
        if member is None:
            raise errors.NotFound(f"not in session {session_id!r}; join it first")
        return member

    async def resume_all(self, conn: Connection, principal: Principal) -> list[dict[str, Any]]:
        """Rebind every present membership of ``principal`` to ``conn``."""
        async with self.services.tx() as tx:
            present = await _present_memberships(tx, principal)
        out = []
        for s, p in present:
            out.append(await self.bind(conn, s, p, resumed=True))
        return out

    async def rebind_terminal_visit(
        self, conn: Connection, visit: sessions.SessionInfo
    ) -> dict[str, Any]:
        """A terminal's open visit after a reload: bound again, with its queue position."""
        assert conn.principal is not None
        async with self.services.tx() as tx:
            s = await sessions.get_session(tx, visit.id)
        mine = [
            p for p in s.participants if p.principal_ref == conn.principal.ref and p.left_at is None
        ]
        if not mine:
            return {"session": session_brief(s)}
        bound = await self.bind(conn, s, mine[-1], resumed=True)
        if s.state is SessionState.WAITING and s.reception_unit_id is not None:
            await self.services.queue.ensure_sub(s.reception_unit_id)
            bound["position"] = await self.services.queue.position(s)
        return bound

    async def bind(
        self,
        conn: Connection,
        s: sessions.SessionInfo,
        p: sessions.ParticipantInfo,
        *,
        resumed: bool,
    ) -> dict[str, Any]:
        """Attach participant ``p`` of session ``s`` to ``conn`` (join, resume or reload)."""
        assert conn.principal is not None
        services = self.services
        hub_id = services.hub_id
        held = self.members.get(p.id)
        # Still held by another connection (the client reconnected before this hub noticed the
        # old one was lost) or by another hub: the worker's peer belongs to the old
        # connection's RTCPeerConnection, and the client offers from a new one, which cannot
        # renegotiate that peer. Close it, as a detach would have (same bus channel as the
        # client's coming offer, so the worker closes first).
        older = held.conn if held is not None and held.conn is not conn else None
        stale_peer = older is not None or p.hub_id not in ("", hub_id)
        await self.attach(conn, s, p)
        if older is not None:
            # one membership, one live connection: the older one (a replayed resume token, a
            # second tab) is told and closed, not left open without its room
            self.supersede(older, s.id)
        if stale_peer:
            member = self.members.get(p.id)
            if member is not None:
                member.media_connected = False  # the new peer subscribes when connected
            await services.relay.send(B.PeerClose(session_id=s.id, peer=p.id))
        if p.hub_id != hub_id:
            async with services.tx() as tx:
                await sessions.set_participant(tx, p.id, hub_id=hub_id)
        if resumed:
            await services.rooms.op(B.MemberResumed(session_id=s.id, participant=p.id, hub=hub_id))
            async with services.tx() as tx:
                await sessions.log_event(
                    tx, s.id, "resumed", actor=conn.principal.ref, participant_id=p.id
                )
        return await services.rooms.snapshot_of(s.id, p.id)

    def supersede(self, older: Connection, session_id: str) -> None:
        """Close ``older``: a newer connection of the same principal holds its membership."""
        if older.closed.is_set():
            return
        logger.info("ws %s: superseded in session %s, closing it", older.id, session_id)
        older.send(E.SessionRemoved(session=session_id, reason=SUPERSEDED))
        self.services.spawn(older.close(SUPERSEDED), f"ws-superseded-{older.id}")

    async def attach(
        self, conn: Connection, s: sessions.SessionInfo, p: sessions.ParticipantInfo
    ) -> None:
        """This hub's memory of a binding: the member, the connection, the room channel."""
        assert conn.principal is not None
        member = self.members.get(p.id)
        if member is not None:
            if member.leave_timer is not None:
                member.leave_timer.cancel()
                member.leave_timer = None
            if member.conn is not None and member.conn is not conn:
                member.conn.participants.pop(s.id, None)
            member.conn = conn
            member.role = p.role
        else:
            member = Member(
                p.id,
                s.id,
                s.kind,
                p.role,
                conn.principal,
                conn,
                admitted=p.admission is AdmissionState.ADMITTED,
            )
            self.members[p.id] = member
        conn.participants[s.id] = p.id
        await self.services.rooms.join_channel(s, p.id)

    async def detach(self, conn: Connection) -> None:
        """A connection ended: start the resume window of each of its memberships."""
        services = self.services
        for session_id, pid in list(conn.participants.items()):
            member = self.members.get(pid)
            if member is None or member.conn is not conn:
                continue
            member.conn = None
            await services.relay.send(B.PeerClose(session_id=session_id, peer=pid))
            member.media_connected = False
            if member.kind is SessionKind.VISIT and member.role is ParticipantRole.RESIDENT:
                async with services.tx() as tx:
                    s = await sessions.get_session(tx, session_id)
                if s.state is SessionState.WAITING:
                    continue  # a queued terminal keeps its place across reloads
            member.leave_timer = services.spawn(self._leave_after_window(pid), f"leave-timer-{pid}")
        conn.participants.clear()

    async def _leave_after_window(self, pid: str) -> None:
        await asyncio.sleep(self.services.settings.resume_window_s)
        member = self.members.get(pid)
        if member is None or member.conn is not None:
            return
        member.leave_timer = None
        async with self.services.tx() as tx:
            p = await sessions.get_participant(tx, pid)
        if p.hub_id != self.services.hub_id or p.left_at is not None:
            self.forget(pid)
            return  # resumed on another hub, or already gone
        await self.services.rooms.leave(member.session_id, pid, "disconnected")

    def forget(self, pid: str) -> None:
        """Drop the member from this hub (it left, was removed, or lives on another hub)."""
        member = self.members.pop(pid, None)
        if member is None:
            return
        if member.leave_timer is not None:
            member.leave_timer.cancel()
        self.services.rooms.drop_member(member.session_id, pid)

    def cancel_timers(self) -> None:
        """Stop every resume window (the hub is closing)."""
        for member in list(self.members.values()):
            if member.leave_timer is not None:
                member.leave_timer.cancel()

    async def check_invite(self, conn: Connection) -> None:
        """An invite revoked or expired mid-session ends its holder's access at once."""
        assert conn.principal is not None
        async with self.services.tx() as tx:
            valid = await accounts.get_valid_invite(tx, conn.principal.id)
        if valid is None:
            for session_id, pid in list(conn.participants.items()):
                await self.services.rooms.leave(session_id, pid, "invite_revoked")
            conn.close_reason = "invite_revoked"
            raise errors.AccessDenied(f"invite {conn.principal.id} was revoked or has expired")


async def _present_memberships(
    tx: Transaction, principal: Principal
) -> list[tuple[sessions.SessionInfo, sessions.ParticipantInfo]]:
    out = []
    for session_id in await sessions.open_session_ids_of(tx, principal):
        full = await sessions.get_session_for(tx, session_id, principal.ref)
        for p in full.participants:
            if (
                p.principal_ref == principal.ref
                and p.left_at is None
                and p.admission is not AdmissionState.REFUSED
            ):
                out.append((full, p))
    return out
