"""What a command handler works with: its connection, its principal, the hub's services.

Handlers never see the hub. They reach the database (:meth:`Context.tx`, :meth:`Context.run`),
the bus, room placement and this hub's parts (presence, rooms, the visit queue, the media
relay) through the :class:`Context` of the request they answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from config import errors
from config.settings import Settings
from records import sessions
from records.calendar import HolidayCalendar
from records.enums import PrincipalKind
from records.orgs import OrgTree
from records.policy import Action, require_moderator
from records.principals import Principal
from records.store import SyncConnection, Transaction
from signaling import protocol as P
from signaling.bus import Bus
from signaling.connection import Connection
from signaling.messages import ParticipantAct
from signaling.placement import Placement
from signaling.presence import Member, Presence
from signaling.queue import VisitQueue
from signaling.relay import MediaRelay
from signaling.rooms import Rooms
from signaling.services import Services

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """One request's connection and the services its handler may use.

    Args:
        conn: the client's connection.
        request_id: the request's ``id`` (None for a notification).
        services: this hub's parts.
        cookie: the principal of the login cookie, if any (``hello`` decides with it).
    """

    conn: Connection
    request_id: str | None
    services: Services
    cookie: Principal | None = None

    @property
    def principal(self) -> Principal:
        """Who sent the request.

        Raises:
            ProtocolError: ``unauthenticated``, before ``hello``.
        """
        if self.conn.principal is None:
            raise P.ProtocolError(P.UNAUTHENTICATED, "send hello first")
        return self.conn.principal

    @property
    def settings(self) -> Settings:
        """The hub's settings."""
        return self.services.settings

    @property
    def tree(self) -> OrgTree:
        """The current org tree."""
        return self.services.store.tree

    @property
    def hub_id(self) -> str:
        """This hub's id (participants remember which hub holds them)."""
        return self.services.hub_id

    @property
    def calendar(self) -> HolidayCalendar | None:
        """The holiday calendar (for events written into petition items)."""
        return self.services.calendar

    @property
    def bus(self) -> Bus:
        """The bus."""
        return self.services.bus

    @property
    def placement(self) -> Placement:
        """Which worker serves which room."""
        return self.services.placement

    @property
    def presence(self) -> Presence:
        """This hub's members and their connections."""
        return self.services.presence

    @property
    def rooms(self) -> Rooms:
        """This hub's rooms: room events, snapshots, leave, end."""
        return self.services.rooms

    @property
    def queue(self) -> VisitQueue:
        """The visit queue."""
        return self.services.queue

    @property
    def relay(self) -> MediaRelay:
        """The media relay."""
        return self.services.relay

    def tx(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """A database transaction (on SQLite, one at a time)."""
        return self.services.tx()

    async def run(
        self,
        fn: Callable[Concatenate[SyncConnection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """One transaction of prebuilt statements (the hot paths: hello, join)."""
        return await self.services.run(fn, *args, **kwargs)

    async def session(
        self, session_id: str, principal: Principal | None = None
    ) -> sessions.SessionInfo:
        """The session (with ``principal``: only that principal's participant rows)."""
        return await self.services.session(session_id, principal)

    def member(self, session_id: str) -> Member:
        """This connection's member in ``session_id`` (NotFound if it did not join)."""
        return self.services.presence.member_of(self.conn, session_id)

    def require_moderator(
        self, principal: Principal, s: sessions.SessionInfo, action: Action
    ) -> None:
        """:func:`records.policy.require_moderator` for ``principal``'s present rows in ``s``."""
        present = [
            p.role for p in s.participants if p.principal_ref == principal.ref and p.left_at is None
        ]
        require_moderator(principal, action, s.target(), present, self.tree)

    async def moderated(
        self, req: ParticipantAct
    ) -> tuple[Principal, sessions.SessionInfo, sessions.ParticipantInfo]:
        """A moderator's act on ``req.participant`` of ``req.session``: who, where, whom."""
        principal = self.principal
        s = await self.session(req.session, principal)
        self.require_moderator(principal, s, Action.MODERATE_SESSION)
        if (
            req.session not in self.conn.participants
            and principal.kind is not PrincipalKind.ACCOUNT
        ):
            raise errors.AccessDenied("join the session first")
        try:
            async with self.tx() as tx:
                target = await sessions.get_participant(tx, req.participant)
        except errors.NotFound:
            target = None
        if target is None or target.session_id != s.id:
            raise errors.NotFound(f"participant {req.participant!r} not in session {s.id}")
        return principal, s, target
