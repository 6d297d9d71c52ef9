"""The signaling hub: ``/ws`` connections, sessions and rooms, the visit queue, media relay.

State that must survive a reload, a hub restart or another hub lives in the database
(sessions, participants, admissions, roles) and travels as bus messages:

- ``room.<session>``: room operations every hub with members of that room applies;
- ``queue.<reception unit>``: "the queue changed" (each hub recomputes positions);
- ``hub.<hub id>``: replies from media workers for this hub's peers;
- ``announce`` and ``terminal.revoked``: pushes to terminals.

The hub keeps only per-connection state in memory. docs/protocol.md documents the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from aiohttp import WSMsgType, web

from config import errors
from config.settings import Settings
from records import accounts, items, sessions
from records.calendar import HolidayCalendar
from records.enums import (
    AdmissionState,
    ParticipantRole,
    PrincipalKind,
    Role,
    SessionKind,
    SessionState,
)
from records.lifecycle import EventType
from records.lookup import format_code
from records.policy import Action, decide, may_create_session, require
from records.principals import Principal
from records.store import Store, SyncConnection
from signaling import protocol as P
from signaling.bus import Bus, Message, Subscription
from signaling.connection import Connection
from signaling.placement import Placement
from signaling.tokens import sign_resume, verify_resume
from signaling.turn import turn_credentials

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")

HUB_TTL_S = 5.0
#: how often (in heartbeats, about seconds) live sessions note their activity
ACTIVITY_EVERY_BEATS = 10
#: a worker whose bus channel has had no subscriber this long is gone: a dead process loses its
#: Redis connection at once, seconds before its registry entry expires; a second covers the
#: bus's own reconnect after a connection error
WORKER_DEAF_S = 1.0
STAFF_ROLES = frozenset(
    {
        ParticipantRole.OFFICER,
        ParticipantRole.CONVENER,
        ParticipantRole.MEDIATOR,
        ParticipantRole.TRAINER,
    }
)
LOBBY_KINDS = frozenset({SessionKind.CONFERENCE, SessionKind.MEDIATION})
CLOSED_STATES = frozenset({SessionState.ENDED, SessionState.CANCELLED, SessionState.INTERRUPTED})


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


@dataclasses.dataclass(slots=True)
class RoomLocal:
    """This hub's view of a room it has members in."""

    session_id: str
    kind: SessionKind
    members: set[str]
    subscription: Subscription
    task: asyncio.Task[None]
    attendance_dirty: bool = False


class _SqliteGate:
    """Keeps this hub's SQLite transactions from waiting on each other inside SQLite.

    SQLite has one writer; a second one waits in SQLite's busy handler, which sleeps (up to
    100 ms at a time). ``shared`` holders are :meth:`Store.run` calls, already one at a time on
    the store's database thread, so any number may be queued there; an ``exclusive`` holder
    (an ORM transaction on the aiosqlite pool) runs alone. A waiting exclusive holder stops new
    shared ones, so a burst of joins cannot starve it.
    """

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        """Hold the gate beside other shared holders."""
        async with self._cond:
            await self._cond.wait_for(lambda: not self._exclusive and not self._exclusive_waiting)
            self._shared += 1
        try:
            yield
        finally:
            async with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold the gate alone."""
        async with self._cond:
            self._exclusive_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._exclusive_waiting -= 1
                self._cond.notify_all()  # shared waiters held back by this waiter (if cancelled)
            self._exclusive = True
        try:
            yield
        finally:
            async with self._cond:
                self._exclusive = False
                self._cond.notify_all()


def may_publish(role: ParticipantRole) -> bool:
    """Training viewers watch; everybody else may publish."""
    return role is not ParticipantRole.VIEWER


def should_subscribe(
    kind: SessionKind, subscriber: ParticipantRole, publisher: ParticipantRole
) -> bool:
    """Who receives whose media."""
    if subscriber is ParticipantRole.FIELD:
        return False  # the field unit publishes only
    if kind is SessionKind.TRAINING:
        return publisher in (ParticipantRole.TRAINER, ParticipantRole.SPEAKER)
    return True


class Hub:
    """Owns every WebSocket connection of this process and its room subscriptions."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        *,
        hub_id: str | None = None,
        calendar: HolidayCalendar | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.calendar = calendar  # for writing session outcomes into petition items
        self.hub_id = hub_id or settings.hub_id or f"hub-{secrets.token_hex(6)}"
        self.placement = Placement(bus)
        self.conns: dict[str, Connection] = {}
        self.members: dict[str, Member] = {}
        self.rooms: dict[str, RoomLocal] = {}
        self.queue_subs: dict[int, tuple[Subscription, asyncio.Task[None]]] = {}
        self._queue_dirty: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subs: list[Subscription] = []
        self._closing = False
        self.counters: dict[str, int] = {}
        self._dead_hubs: dict[str, float] = {}
        #: the worker this hub last saw serving each of its rooms: a room whose worker leaves
        #: the registry is lost for this hub's members, whoever releases the placement
        self.room_workers: dict[str, str] = {}
        self._deaf_workers: dict[str, float] = {}  # worker -> first seen without a subscriber
        self._db_lock = _SqliteGate() if settings.database_url.startswith("sqlite") else None
        self.handlers: dict[
            str, Callable[[Connection, P.Request], Awaitable[dict[str, Any] | None]]
        ] = {
            "ping": self._on_ping,
            "visit.request": self._on_visit_request,
            "visit.cancel": self._on_visit_cancel,
            "visit.rate": self._on_visit_rate,
            "queue.watch": self._on_queue_watch,
            "visit.accept": self._on_visit_accept,
            "session.create": self._on_session_create,
            "session.join": self._on_session_join,
            "session.leave": self._on_session_leave,
            "session.end": self._on_session_end,
            "session.link_item": self._on_link_item,
            "lobby.admit": self._on_admit,
            "lobby.refuse": self._on_refuse,
            "participant.mute": self._on_mute,
            "participant.remove": self._on_remove,
            "hand.raise": self._on_hand,
            "training.promote": self._on_promote,
            "training.demote": self._on_demote,
            "chat.send": self._on_chat,
            "recording.set": self._on_recording_set,
            "media.offer": self._on_media_offer,
            "media.answer": self._on_media_answer,
            "media.candidate": self._on_media_candidate,
        }

    # ---- lifecycle ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        """A database transaction; on SQLite, one at a time per hub.

        SQLite has one writer: concurrent transactions of this hub would wait in SQLite's busy
        handler (sleeps of up to 100 ms, measured p99 join of seconds at 20 joins in flight)
        or fail outright when a read snapshot turns into a write. Queueing them on an asyncio
        lock costs a millisecond per transaction instead. PostgreSQL needs no such lock.
        """
        if self._db_lock is None:
            async with self.store.transaction() as tx:
                yield tx
            return
        async with self._db_lock.exclusive(), self.store.transaction() as tx:
            yield tx

    async def _run(
        self,
        fn: Callable[Concatenate[SyncConnection, _P], _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        """``store.run`` (one transaction of prebuilt statements), never beside a :meth:`_tx`.

        Runs do not wait for each other here: on SQLite they queue on the store's one database
        thread, which takes the next as soon as one commits (taking turns on a lock instead
        cost two thread wake-ups per transaction, most of a join's latency on a busy machine).
        """
        if self._db_lock is None:
            return await self.store.run(fn, *args, **kwargs)
        async with self._db_lock.shared():
            return await self.store.run(fn, *args, **kwargs)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub task %s failed", task.get_name(), exc_info=task.exception())

    async def start(self) -> None:
        """Mark sessions a crash left live as interrupted; subscribe; start the monitors."""
        async with self._tx() as tx:
            interrupted = await sessions.mark_interrupted(tx) if not self.settings.redis_url else []
        if interrupted:
            logger.warning("marked %d sessions interrupted after a restart", len(interrupted))
        await self.bus.heartbeat(self.hub_id, {"kind": "hub"}, HUB_TTL_S)
        for channel, handler in (
            (f"hub.{self.hub_id}", self._on_worker_message),
            ("announce", self._on_announce),
            ("terminal.revoked", self._on_terminal_revoked),
        ):
            sub = await self.bus.subscribe(channel)
            self._subs.append(sub)
            self._spawn(self._consume(sub, handler), f"hub-consume-{channel}")
        self._spawn(self._heartbeat_loop(), "hub-heartbeat")
        self._spawn(self._reaper_loop(), "hub-reaper")
        self._spawn(self._attendance_loop(), "hub-attendance")

    async def close(self) -> None:
        """Stop accepting, tell clients, close connections, cancel tasks; idempotent."""
        if self._closing:
            return
        self._closing = True
        for conn in list(self.conns.values()):
            conn.send(P.event("server.closing", reason="hub shutting down"))
            await conn.close("hub shutting down")
        for member in list(self.members.values()):
            if member.leave_timer is not None:
                member.leave_timer.cancel()
        for room in list(self.rooms.values()):
            await room.subscription.close()
        for sub, _task in list(self.queue_subs.values()):
            await sub.close()
        for sub in self._subs:
            await sub.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(errors.GatewayError):
            await self.bus.forget_worker(self.hub_id)

    async def _consume(
        self, sub: Subscription, handler: Callable[[Message], Awaitable[None]]
    ) -> None:
        async for message in sub:
            try:
                await handler(message)
            except errors.GatewayError as exc:
                logger.warning(
                    "bus message %s failed: %s", message.get("type") or message.get("op"), exc
                )
            except Exception:
                logger.exception("bus message handler failed")

    async def _heartbeat_loop(self) -> None:
        beat = 0
        while True:
            try:
                await self.bus.heartbeat(
                    self.hub_id, {"kind": "hub", "connections": len(self.conns)}, HUB_TTL_S
                )
            except errors.BusError as exc:
                logger.warning("hub heartbeat failed: %s", exc)
            beat += 1
            if beat % ACTIVITY_EVERY_BEATS == 0 and self.rooms:
                # a crash ends a live session at its last known activity: keep that recent
                try:
                    async with self._tx() as tx:
                        await sessions.touch_sessions(tx, list(self.rooms))
                except errors.GatewayError as exc:
                    logger.warning("session activity not noted: %s", exc)
            await asyncio.sleep(1.0)

    # ---- the WebSocket handler ---------------------------------------------------------------

    async def handle_ws(
        self, request: web.Request, cookie_principal: Principal | None
    ) -> web.StreamResponse:
        """Serve one ``/ws`` client until it leaves, falls silent or falls behind."""
        if self._closing:
            raise web.HTTPServiceUnavailable(reason="hub shutting down")
        ws = web.WebSocketResponse(
            heartbeat=self.settings.heartbeat_timeout_s / 2,
            max_msg_size=self.settings.max_message_bytes * 4,
        )
        await ws.prepare(request)
        remote = (request.remote or "")[:64]
        transport = request.transport
        conn = Connection(
            ws,
            secrets.token_hex(8),
            remote,
            self.settings.outbound_queue,
            abort=transport.abort if transport is not None else None,
        )
        conn.start()
        self.conns[conn.id] = conn
        try:
            await self._read_loop(conn, cookie_principal)
        except Exception:
            logger.exception("ws %s: connection handler failed", conn.id)
        finally:
            self.conns.pop(conn.id, None)
            try:
                await self._detach(conn)
            finally:  # even when the handler is cancelled (shutdown): no writer left behind
                await conn.close()
        return ws

    async def _read_loop(self, conn: Connection, cookie_principal: Principal | None) -> None:
        timeout = self.settings.heartbeat_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not conn.closed.is_set():
            try:
                # our own deadline, not receive(timeout=): aiohttp restarts its read timeout on
                # every pong, so a client that answers WebSocket pings but never speaks would
                # never time out. Silent means: no message of the protocol (ping included).
                async with asyncio.timeout_at(deadline):
                    msg = await conn.ws.receive()
            except TimeoutError:
                conn.close_reason = "heartbeat_timeout"
                conn.send(P.error(None, P.HEARTBEAT_TIMEOUT, f"silent for more than {timeout:g} s"))
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            deadline = loop.time() + timeout
            self._count("ws_messages")
            if not conn.allow(self.settings.max_messages_per_s):
                conn.send(P.error(None, P.RATE_LIMITED, "too many messages; slow down"))
                if conn.violations > self.settings.max_messages_per_s * 5:
                    conn.close_reason = "rate_limited"
                    return
                continue
            await conn.backpressure(timeout)
            if conn.closed.is_set():
                return
            raw = msg.data
            try:
                req = P.parse(raw, self.settings.max_message_bytes)
            except P.ProtocolError as exc:
                self._count(f"ws_error_{exc.code}")
                conn.send(P.error(exc.request_id, exc.code, str(exc)))
                continue
            await self._dispatch(conn, req, cookie_principal)

    async def _dispatch(
        self, conn: Connection, req: P.Request, cookie_principal: Principal | None
    ) -> None:
        reply: dict[str, Any]
        try:
            if conn.principal is None:
                if req.type == "hello":
                    reply = await self._on_hello(conn, req, cookie_principal)
                elif req.type == "ping":
                    reply = {}
                else:
                    raise P.ProtocolError(P.UNAUTHENTICATED, "send hello first", req.id)
            elif req.type == "hello":
                raise P.ProtocolError(P.INVALID_STATE, "already said hello", req.id)
            else:
                if conn.principal.kind is PrincipalKind.INVITE and not req.type.startswith(
                    "media."
                ):
                    await self._check_invite(conn)
                reply = await self.handlers[req.type](conn, req) or {}
            if req.id is not None:
                conn.send(P.result(req.id, reply or {}))
        except P.ProtocolError as exc:
            if exc.code == P.UNAUTHENTICATED and req.type != "hello" and not conn.refused_anonymous:
                # once per connection: a client spamming before hello must not flood the log
                conn.refused_anonymous = True
                await self._audit_denied(conn, req, str(exc))
            conn.send(P.error(req.id, exc.code, str(exc)))
        except errors.AccessDenied as exc:
            await self._audit_denied(conn, req, str(exc))
            conn.send(P.error(req.id, P.FORBIDDEN, str(exc)))
        except errors.NotFound as exc:
            conn.send(P.error(req.id, P.NOT_FOUND, str(exc)))
        except errors.InvalidTransition as exc:
            conn.send(P.error(req.id, P.INVALID_STATE, str(exc)))
        except errors.ValidationError as exc:
            conn.send(P.error(req.id, P.BAD_MESSAGE, str(exc)))
        except errors.Conflict as exc:
            conn.send(P.error(req.id, P.CONFLICT, str(exc)))
        except errors.BusError as exc:
            logger.warning("ws %s: %s failed on the bus: %s", conn.id, req.type, exc)
            conn.send(P.error(req.id, P.MEDIA_UNAVAILABLE, "the media service is unreachable"))
        except errors.GatewayError:
            logger.exception("ws %s: %s failed", conn.id, req.type)
            conn.send(P.error(req.id, P.INTERNAL, "internal error; see the server log"))

    async def _audit_denied(self, conn: Connection, req: P.Request, reason: str) -> None:
        actor = conn.principal.ref if conn.principal else "anonymous"
        try:
            async with self._tx() as tx:
                await accounts.audit(
                    tx,
                    actor,
                    req.type,
                    "session",
                    str(req["session"] or ""),
                    remote=conn.remote,
                    outcome="denied",
                    detail={"reason": reason[:300]},
                )
        except errors.GatewayError:
            logger.exception("audit of a refusal failed")

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # ---- hello, resume, detach ---------------------------------------------------------------

    async def _on_hello(
        self, conn: Connection, req: P.Request, cookie: Principal | None
    ) -> dict[str, Any]:
        principal = cookie
        token = req["token"]
        terminal_hello: sessions.TerminalHello | None = None
        if token and token.startswith(accounts.TERMINAL_PREFIX):
            # the credential, the announcements and the open visit in one transaction
            terminal_hello = await self._run(sessions.terminal_hello, token, self.store.tree)
            terminal = terminal_hello.terminal
            principal = terminal.principal() if terminal else None
            community = self.store.tree.get(terminal.unit_id) if terminal else None
            if principal is not None and community is not None:
                # people see a terminal as its community: the officer in a visit, the trainer
                # when it raises a hand in a training (a device name means nothing to them)
                principal = dataclasses.replace(principal, name=community.name)
        elif token:
            async with self._tx() as tx:
                if token.startswith(accounts.INVITE_PREFIX):
                    invite = await accounts.resolve_invite(tx, self.settings.secret_key, token)
                    principal = invite.principal() if invite else None
                else:
                    principal = None
        if principal is None:
            async with self._tx() as tx:
                await accounts.audit(
                    tx, "anonymous", "ws_hello", remote=conn.remote, outcome="denied"
                )
            raise P.ProtocolError(
                P.UNAUTHENTICATED, "a valid login, device credential or invite is needed", req.id
            )
        if req["resume"] and (
            verify_resume(self.settings.secret_key, req["resume"], principal.ref) is None
        ):
            # checked before the connection is authenticated: the client may say hello again
            # without the token on the same connection (web/static/js/ws.js does)
            async with self._tx() as tx:
                await accounts.audit(
                    tx,
                    principal.ref,
                    "ws_resume",
                    remote=conn.remote,
                    outcome="denied",
                    detail={"reason": "resume token not valid for this principal"},
                )
            raise P.ProtocolError(
                P.UNAUTHENTICATED, "resume token is not valid for this principal", req.id
            )
        conn.principal = principal
        resumed: list[dict[str, Any]] = []
        if req["resume"]:
            resumed = await self._resume_all(conn, principal)
        reply: dict[str, Any] = {
            "principal": {
                "kind": principal.kind.value,
                "id": principal.id,
                "name": principal.name,
                "unit_id": principal.unit_id,
                "roles": sorted(r.value for r in principal.roles),
                "session_id": principal.session_id,
            },
            "resume_token": sign_resume(self.settings.secret_key, principal.ref, conn.id),
            "resume_window_s": self.settings.resume_window_s,
            "heartbeat_s": self.settings.heartbeat_timeout_s,
            "resumed": resumed,
            "server_time": time.time(),
        }
        if principal.kind is PrincipalKind.TERMINAL:
            assert principal.unit_id is not None
            if terminal_hello is not None:
                anns, visit = terminal_hello.announcements, terminal_hello.visit
            else:
                async with self._tx() as tx:
                    anns = await sessions.active_announcements(
                        tx, self.store.tree.ancestors(principal.unit_id)
                    )
                    visit = await sessions.open_visit_of_terminal(tx, int(principal.id))
            reply["announcements"] = [a.as_json() for a in anns]
            if visit is not None:
                reply["visit"] = await self._rebind_terminal_visit(conn, visit)
        return reply

    async def _resume_all(self, conn: Connection, principal: Principal) -> list[dict[str, Any]]:
        """Rebind every present membership of ``principal`` to ``conn``."""
        async with self._tx() as tx:
            present = await _present_memberships(tx, principal)
        out = []
        for s, p in present:
            out.append(await self._bind(conn, s, p, resumed=True))
        return out

    async def _rebind_terminal_visit(
        self, conn: Connection, visit: sessions.SessionInfo
    ) -> dict[str, Any]:
        assert conn.principal is not None
        async with self._tx() as tx:
            s = await sessions.get_session(tx, visit.id)
        mine = [
            p for p in s.participants if p.principal_ref == conn.principal.ref and p.left_at is None
        ]
        if not mine:
            return {"session": _session_brief(s)}
        bound = await self._bind(conn, s, mine[-1], resumed=True)
        if s.state is SessionState.WAITING and s.reception_unit_id is not None:
            await self._ensure_queue_sub(s.reception_unit_id)
            bound["position"] = await self._position(s)
        return bound

    async def _bind(
        self,
        conn: Connection,
        s: sessions.SessionInfo,
        p: sessions.ParticipantInfo,
        *,
        resumed: bool,
    ) -> dict[str, Any]:
        """Attach participant ``p`` of session ``s`` to ``conn`` (join, resume or reload)."""
        assert conn.principal is not None
        held = self.members.get(p.id)
        # Still held by another connection (the client reconnected before this hub noticed the
        # old one was lost) or by another hub: the worker's peer belongs to the old
        # connection's RTCPeerConnection, and the client offers from a new one, which cannot
        # renegotiate that peer. Close it, as a detach would have (same bus channel as the
        # client's coming offer, so the worker closes first).
        stale_peer = (held is not None and held.conn is not None and held.conn is not conn) or (
            p.hub_id not in ("", self.hub_id)
        )
        await self._attach(conn, s, p)
        if stale_peer:
            member = self.members.get(p.id)
            if member is not None:
                member.media_connected = False  # the new peer subscribes when connected
            await self._media_send(s.id, {"type": "peer.close", "room": s.id, "peer": p.id})
        if p.hub_id != self.hub_id:
            async with self._tx() as tx:
                await sessions.set_participant(tx, p.id, hub_id=self.hub_id)
        if resumed:
            await self._room_op(s.id, {"op": "resumed", "participant": p.id, "hub": self.hub_id})
            async with self._tx() as tx:
                await sessions.log_event(
                    tx, s.id, "resumed", actor=conn.principal.ref, participant_id=p.id
                )
        return await self._room_snapshot(s.id, p.id)

    async def _attach(
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
        await self._join_room_channel(s, p.id)

    async def _detach(self, conn: Connection) -> None:
        """A connection ended: start the resume window of each of its memberships."""
        for session_id, pid in list(conn.participants.items()):
            member = self.members.get(pid)
            if member is None or member.conn is not conn:
                continue
            member.conn = None
            await self._media_send(
                session_id, {"type": "peer.close", "room": session_id, "peer": pid}
            )
            member.media_connected = False
            if member.kind is SessionKind.VISIT and member.role is ParticipantRole.RESIDENT:
                async with self._tx() as tx:
                    s = await sessions.get_session(tx, session_id)
                if s.state is SessionState.WAITING:
                    continue  # a queued terminal keeps its place across reloads
            member.leave_timer = self._spawn(self._leave_after_window(pid), f"leave-timer-{pid}")
        conn.participants.clear()

    async def _leave_after_window(self, pid: str) -> None:
        await asyncio.sleep(self.settings.resume_window_s)
        member = self.members.get(pid)
        if member is None or member.conn is not None:
            return
        member.leave_timer = None
        async with self._tx() as tx:
            p = await sessions.get_participant(tx, pid)
        if p.hub_id != self.hub_id or p.left_at is not None:
            self._forget_member(pid)
            return  # resumed on another hub, or already gone
        await self._leave(member.session_id, pid, "disconnected")

    def _forget_member(self, pid: str) -> None:
        member = self.members.pop(pid, None)
        if member is None:
            return
        if member.leave_timer is not None:
            member.leave_timer.cancel()
        room = self.rooms.get(member.session_id)
        if room is not None:
            room.members.discard(pid)
            if not room.members:
                self.rooms.pop(member.session_id, None)
                room.task.cancel()
                self._spawn(room.subscription.close(), f"room-unsub-{member.session_id}")

    async def _check_invite(self, conn: Connection) -> None:
        """An invite revoked or expired mid-session ends its holder's access at once."""
        assert conn.principal is not None
        async with self._tx() as tx:
            valid = await accounts.get_valid_invite(tx, conn.principal.id)
        if valid is None:
            for session_id, pid in list(conn.participants.items()):
                await self._leave(session_id, pid, "invite_revoked")
            conn.close_reason = "invite_revoked"
            raise errors.AccessDenied(f"invite {conn.principal.id} was revoked or has expired")

    # ---- rooms: bus channel and snapshots -----------------------------------------------------

    async def _join_room_channel(self, s: sessions.SessionInfo, pid: str) -> None:
        room = self.rooms.get(s.id)
        if room is None:
            sub = await self.bus.subscribe(f"room.{s.id}")
            task = self._spawn(self._consume(sub, self._on_room_message), f"room-{s.id}")
            room = RoomLocal(s.id, s.kind, set(), sub, task)
            self.rooms[s.id] = room
        room.members.add(pid)

    async def _room_op(self, session_id: str, op: dict[str, Any]) -> None:
        await self.bus.publish(f"room.{session_id}", op)

    async def _room_event(
        self, session_id: str, event: dict[str, Any], audience: str = "all"
    ) -> None:
        await self._room_op(session_id, {"op": "event", "event": event, "audience": audience})

    async def _participant_event(
        self, member: Member, etype: str, audience: str = "all", **fields: Any
    ) -> None:
        """Tell ``member``'s room an event about ``member`` (``session``, ``participant``)."""
        event = P.event(
            etype, session=member.session_id, participant=member.participant_id, **fields
        )
        await self._room_event(member.session_id, event, audience)

    async def _room_snapshot(self, session_id: str, pid: str) -> dict[str, Any]:
        member = self.members.get(pid)
        async with self._tx() as tx:
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
                exclude_roles=_hidden_roles(s.kind),
                include_ids=[pid],
            )
        return self._snapshot(s, me, present)

    def _snapshot(
        self,
        s: sessions.SessionInfo,
        me: sessions.ParticipantInfo,
        present: Sequence[sessions.ParticipantInfo],
    ) -> dict[str, Any]:
        """What a client sees of a room on joining: the session, itself, the others, the lobby."""
        pid = me.id
        visible = [_participant(p) for p in present if p.admission is AdmissionState.ADMITTED]
        return {
            "session": _session_brief(s),
            "participant": _participant(me),
            "participants": visible,
            "lobby": [_participant(p) for p in present if p.admission is AdmissionState.LOBBY]
            if me.role in STAFF_ROLES
            else [],
            "recording": s.recorded and s.state is SessionState.LIVE,
            "ice_servers": self._ice_servers(pid),
        }

    def _ice_servers(self, pid: str) -> list[dict[str, Any]]:
        servers: list[dict[str, Any]] = [
            {
                "urls": list(x.urls),
                **({"username": x.username, "credential": x.credential} if x.username else {}),
            }
            for x in self.settings.ice_servers
        ]
        if self.settings.turn_secret and self.settings.turn_urls:
            username, password = turn_credentials(
                self.settings.turn_secret, pid, self.settings.turn_ttl_s, time.time()
            )
            servers.append(
                {
                    "urls": list(self.settings.turn_urls),
                    "username": username,
                    "credential": password,
                }
            )
        return servers

    async def _on_room_message(self, msg: Message) -> None:
        op = msg.get("op")
        session_id = str(msg.get("session", ""))
        if op == "event":
            event = msg["event"]
            sid = str(event.get("session", ""))
            self._deliver(sid, event, str(msg.get("audience", "all")))
        elif op == "resumed":
            pid = str(msg["participant"])
            member = self.members.get(pid)
            if member is not None and msg.get("hub") != self.hub_id:
                # resumed on another hub: stop our window timer and forget the member here
                self._forget_member(pid)
        elif op == "kick":
            pid = str(msg["participant"])
            member = self.members.get(pid)
            if member is not None:
                if member.conn is not None:
                    member.conn.send(
                        P.event(
                            "session.removed",
                            session=member.session_id,
                            reason=msg.get("reason", ""),
                        )
                    )
                    member.conn.participants.pop(member.session_id, None)
                self._forget_member(pid)
        elif op == "published":
            await self._subscribe_members_to(
                str(msg["session_id"]), str(msg["participant"]), msg.get("role", "")
            )
        elif op == "admitted":
            pid = str(msg["participant"])
            member = self.members.get(pid)
            if member is not None:
                member.admitted = True
                if member.conn is not None:
                    snapshot = await self._room_snapshot(member.session_id, pid)
                    # the snapshot's "session" is the brief; the event's "session" is the id
                    snapshot["session_info"] = snapshot.pop("session")
                    member.conn.send(
                        P.event(
                            "admission", session=member.session_id, state="admitted", **snapshot
                        )
                    )
        elif op == "role":
            pid = str(msg["participant"])
            member = self.members.get(pid)
            if member is not None:
                member.role = ParticipantRole(str(msg["role"]))
                await self._media_send(
                    member.session_id,
                    {
                        "type": "peer.permit",
                        "room": member.session_id,
                        "peer": pid,
                        "may_publish": may_publish(member.role),
                    },
                )
        elif op == "unpublished":
            # a demoted speaker: the viewers here stop receiving its media
            publisher = str(msg["participant"])
            room = self.rooms.get(session_id)
            kind = room.kind if room is not None else SessionKind.TRAINING
            for pid in list(room.members) if room is not None else []:
                member = self.members.get(pid)
                if member is None or pid == publisher or not member.media_connected:
                    continue
                if not should_subscribe(kind, member.role, ParticipantRole.VIEWER):
                    await self._media_send(
                        member.session_id,
                        {
                            "type": "peer.unsubscribe",
                            "room": member.session_id,
                            "peer": pid,
                            "publisher": publisher,
                        },
                    )
        elif op == "ended":
            sid = str(msg["session_id"])
            for pid, member in list(self.members.items()):
                if member.session_id == sid:
                    if member.conn is not None:
                        member.conn.participants.pop(sid, None)
                    self._forget_member(pid)
        elif op == "attendance":
            room = self.rooms.get(str(msg["session_id"]))
            if room is not None:
                room.attendance_dirty = True

    def _deliver(self, session_id: str, event: dict[str, Any], audience: str) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            return
        for pid in list(room.members):
            member = self.members.get(pid)
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

    # ---- the visit queue -----------------------------------------------------------------------

    async def _ensure_queue_sub(self, unit_id: int) -> None:
        if unit_id in self.queue_subs:
            return
        sub = await self.bus.subscribe(f"queue.{unit_id}")
        task = self._spawn(self._consume(sub, self._on_queue_changed), f"queue-{unit_id}")
        self.queue_subs[unit_id] = (sub, task)

    async def _queue_changed(self, unit_id: int) -> None:
        await self.bus.publish(f"queue.{unit_id}", {"unit_id": unit_id})

    async def _on_queue_changed(self, msg: Message) -> None:
        unit_id = int(msg["unit_id"])
        if unit_id in self._queue_dirty:
            return
        self._queue_dirty.add(unit_id)
        await asyncio.sleep(0.05)  # coalesce bursts of changes into one recomputation
        self._queue_dirty.discard(unit_id)
        async with self._tx() as tx:
            waiting = await sessions.waiting_visits(tx, [unit_id])
        order = {s.id: i + 1 for i, s in enumerate(waiting)}
        for member in self.members.values():
            if (
                member.kind is SessionKind.VISIT
                and member.role is ParticipantRole.RESIDENT
                and member.conn
            ) and member.session_id in order:
                member.conn.send(
                    P.event(
                        "queue.position",
                        session=member.session_id,
                        position=order[member.session_id],
                        waiting=len(waiting),
                    )
                )
        for conn in self.conns.values():
            if unit_id in conn.watching_queue and conn.principal is not None:
                conn.send(
                    P.event(
                        "queue.update",
                        unit_id=unit_id,
                        visits=self._visible_queue(conn.principal, waiting),
                    )
                )

    def _visible_queue(
        self, principal: Principal, waiting: list[sessions.SessionInfo]
    ) -> list[dict[str, Any]]:
        tree = self.store.tree
        out = []
        for i, s in enumerate(waiting):
            if not decide(principal, Action.ANSWER_QUEUE, s.target(), tree):
                continue
            unit = tree.get(s.unit_id)
            out.append(
                {
                    "session": s.id,
                    "position": i + 1,
                    "unit_id": s.unit_id,
                    "unit_name": unit.name if unit else "",
                    "category": s.category,
                    "waiting_since": s.created_at.isoformat(),
                    "to_leader": s.routed_to_leader_id is not None,
                }
            )
        return out

    async def _position(self, s: sessions.SessionInfo) -> int:
        async with self._tx() as tx:
            waiting = await sessions.waiting_visits(
                tx, [s.reception_unit_id] if s.reception_unit_id else None
            )
        for i, w in enumerate(waiting):
            if w.id == s.id:
                return i + 1
        return 0

    async def _on_visit_request(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        if principal.kind is not PrincipalKind.TERMINAL:
            raise errors.AccessDenied("only community terminals request video visits")
        assert principal.unit_id is not None
        tree = self.store.tree
        async with self._tx() as tx:
            existing = await sessions.open_visit_of_terminal(tx, int(principal.id))
        if existing is not None:
            return await self._rebind_terminal_visit(conn, existing)
        reception = tree.reception_unit(principal.unit_id)
        if reception is None:
            raise errors.NotFound(f"no reception unit answers visits from unit {principal.unit_id}")
        leader_id = None
        if req["to_leader"]:
            async with self._tx() as tx:
                for unit_id in (reception.id, *tree.ancestors(reception.id)):
                    leader_id = await sessions.leader_on_duty(tx, dt.date.today(), unit_id)
                    if leader_id is not None:
                        break
            if leader_id is None:
                raise errors.NotFound("no leader is on duty today")
        async with self._tx() as tx:
            s = await sessions.create_session(
                tx,
                kind=SessionKind.VISIT,
                unit_id=principal.unit_id,
                reception_unit_id=reception.id,
                category=req["category"],
                terminal_id=int(principal.id),
                routed_to_leader_id=leader_id,
                recorded=SessionKind.VISIT.value in self.settings.recording_automatic,
                title="视频信访",
            )
            p = await sessions.add_participant(
                tx,
                s.id,
                principal,
                ParticipantRole.RESIDENT,
                AdmissionState.ADMITTED,
                joined=True,
                hub_id=self.hub_id,
            )
            await sessions.log_event(
                tx,
                s.id,
                "visit_requested",
                actor=principal.ref,
                participant_id=p.id,
                data={"category": req["category"]},
            )
        await self._ensure_queue_sub(reception.id)
        s_full = await self._get(s.id)
        snapshot = await self._bind(conn, s_full, p, resumed=False)
        await self._queue_changed(reception.id)
        snapshot["position"] = await self._position(s_full)
        return snapshot

    async def _on_visit_cancel(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        s = await self._get(req["session"], principal)
        if s.kind is not SessionKind.VISIT:
            raise errors.InvalidTransition(f"session {s.id} is a {s.kind.value}, not a visit")
        action = (
            Action.JOIN_SESSION if principal.kind is PrincipalKind.TERMINAL else Action.ANSWER_QUEUE
        )
        require(principal, action, s.target(), self.store.tree)
        async with self._tx() as tx:
            await sessions.set_state(
                tx, s.id, SessionState.CANCELLED, f"cancelled by {principal.ref}"
            )
            await sessions.log_event(tx, s.id, "visit_cancelled", actor=principal.ref)
        await self._room_event(s.id, P.event("session.state", session=s.id, state="cancelled"))
        await self._room_op(s.id, {"op": "ended", "session_id": s.id})
        if s.reception_unit_id is not None:
            await self._queue_changed(s.reception_unit_id)
        return {"session": s.id, "state": "cancelled"}

    async def _on_visit_rate(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        s = await self._get(req["session"], principal)
        if principal.kind is not PrincipalKind.TERMINAL or s.terminal_id != int(principal.id):
            raise errors.AccessDenied("only the visit's own terminal rates it")
        if s.state is not SessionState.ENDED:
            raise errors.InvalidTransition(
                f"session {s.id} is {s.state.value}; rate it after it ended"
            )
        async with self._tx() as tx:
            await sessions.update_session(tx, s.id, rating=req["rating"])
            await sessions.log_event(
                tx, s.id, "rated", actor=principal.ref, data={"rating": req["rating"]}
            )
        return {"session": s.id, "rating": req["rating"]}

    async def _on_queue_watch(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        if principal.kind is not PrincipalKind.ACCOUNT or not principal.has(
            Role.RECEPTION, Role.LEADER
        ):
            raise errors.AccessDenied("watching the visit queue needs the reception or leader role")
        units = [u.id for u in self.store.tree.units.values() if u.is_reception]
        conn.watching_queue = frozenset(units)
        for unit_id in units:
            await self._ensure_queue_sub(unit_id)
        async with self._tx() as tx:
            waiting = await sessions.waiting_visits(tx, units)
        return {"visits": self._visible_queue(principal, waiting)}

    async def _on_visit_accept(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        s = await self._get(req["session"], principal)
        require(principal, Action.ANSWER_QUEUE, s.target(), self.store.tree)
        async with self._tx() as tx:
            taken = await sessions.accept_visit(tx, s.id)
            if not taken:
                current = await sessions.get_session(tx, s.id)
                raise P.ProtocolError(
                    P.ALREADY_TAKEN, f"visit {s.id} is {current.state.value}: already taken", req.id
                )
            p = await sessions.add_participant(
                tx,
                s.id,
                principal,
                ParticipantRole.OFFICER,
                AdmissionState.ADMITTED,
                joined=True,
                hub_id=self.hub_id,
            )
            await sessions.log_event(
                tx, s.id, "visit_accepted", actor=principal.ref, participant_id=p.id
            )
        s = await self._get(s.id)
        snapshot = await self._bind(conn, s, p, resumed=False)
        await self._room_event(
            s.id, P.event("session.state", session=s.id, state="live", recording=s.recorded)
        )
        await self._room_event(
            s.id, P.event("participant.joined", session=s.id, participant=_participant(p))
        )
        if s.reception_unit_id is not None:
            await self._queue_changed(s.reception_unit_id)
        return snapshot

    # ---- conferences, mediations, training, field -----------------------------------------------

    async def _on_session_create(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        kind = SessionKind(req["kind"])
        unit_id = req["unit_id"] or principal.unit_id
        if unit_id is None or self.store.tree.get(unit_id) is None:
            raise errors.NotFound(f"unit {unit_id!r} not found")
        decision = may_create_session(principal, kind, unit_id, self.store.tree)
        if not decision:
            raise errors.AccessDenied(decision.reason)
        record = req["record"]
        if record is None:
            record = kind.value in self.settings.recording_automatic
        elif not record and kind.value in self.settings.recording_automatic:
            raise errors.ValidationError(f"{kind.value} sessions are always recorded")
        async with self._tx() as tx:
            s = await sessions.create_session(
                tx,
                kind=kind,
                unit_id=unit_id,
                title=req["title"],
                convener_account_id=principal.account_id,
                recorded=bool(record),
            )
            await sessions.log_event(tx, s.id, "created", actor=principal.ref)
            await accounts.audit(
                tx, principal.ref, "session_create", "session", s.id, remote=conn.remote
            )
        return {"session": _session_brief(s)}

    async def _on_session_join(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        tree = self.store.tree

        def decide_join(s: sessions.SessionInfo) -> sessions.JoinDecision | None:
            # runs inside the join's transaction (on the database thread with SQLite): reads
            # only immutable values; raising writes nothing
            require(principal, Action.JOIN_SESSION, s.target(), tree)
            if s.state in CLOSED_STATES:
                raise errors.InvalidTransition(f"session {s.id} is {s.state.value}")
            if any(p.left_at is None for p in s.participants):
                return None  # a reload: rejoin the same participant
            if principal.kind is PrincipalKind.INVITE and any(
                p.admission in (AdmissionState.REFUSED, AdmissionState.REMOVED)
                for p in s.participants
            ):
                raise errors.AccessDenied(f"entry to session {s.id} was refused")
            role, admission = self._role_on_join(principal, s)
            start = (
                s.state is SessionState.WAITING
                and s.kind is not SessionKind.VISIT
                and admission is AdmissionState.ADMITTED
            )
            return sessions.JoinDecision(role, admission, start)

        # one transaction: the session, the principal's rows, the policy, the participant row,
        # the event and what the snapshot shows; the join is written before the ack is sent
        view = await self._run(
            sessions.join_session,
            req["session"],
            principal,
            decide_join,
            hidden=_hidden_roles,
            hub_id=self.hub_id,
        )
        s, p = view.session, view.participant
        if p is None:
            mine = [q for q in s.participants if q.left_at is None]
            if mine[-1].admission is AdmissionState.REFUSED:
                raise errors.AccessDenied(f"the convener refused entry to session {s.id}")
            return await self._bind(conn, s, mine[-1], resumed=True)
        role, admission = p.role, p.admission
        await self._attach(conn, s, p)
        snapshot = self._snapshot(s, p, view.present)
        if admission is AdmissionState.LOBBY:
            await self._room_event(
                s.id, P.event("lobby.waiting", session=s.id, participant=_participant(p)), "staff"
            )
        elif s.kind is SessionKind.TRAINING and role is ParticipantRole.VIEWER:
            await self._room_op(s.id, {"op": "attendance", "session_id": s.id})
        else:
            await self._room_event(
                s.id,
                P.event("participant.joined", session=s.id, participant=_participant(p)),
                "admitted",
            )
        return snapshot

    def _role_on_join(
        self, principal: Principal, s: sessions.SessionInfo
    ) -> tuple[ParticipantRole, AdmissionState]:
        admitted = AdmissionState.ADMITTED
        is_convener = (
            principal.account_id is not None and principal.account_id == s.convener_account_id
        )
        if principal.kind is PrincipalKind.INVITE:
            role = principal.session_role or ParticipantRole.PARTY
            if s.kind is SessionKind.TRAINING:
                return ParticipantRole.VIEWER, admitted
            return role, AdmissionState.LOBBY if s.kind in LOBBY_KINDS else admitted
        if s.kind is SessionKind.TRAINING:
            return (ParticipantRole.TRAINER if is_convener else ParticipantRole.VIEWER), admitted
        if is_convener:
            return (
                ParticipantRole.MEDIATOR
                if s.kind is SessionKind.MEDIATION
                else ParticipantRole.CONVENER
            ), admitted
        if s.kind is SessionKind.VISIT:
            return ParticipantRole.OFFICIAL, admitted
        if principal.kind is PrincipalKind.TERMINAL:
            return (
                ParticipantRole.PARTY,
                AdmissionState.LOBBY if s.kind in LOBBY_KINDS else admitted,
            )
        if s.kind in LOBBY_KINDS and not principal.has(Role.LEADER):
            return ParticipantRole.MEMBER, AdmissionState.LOBBY
        return ParticipantRole.MEMBER, admitted

    async def _on_session_leave(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        pid = conn.participants.get(req["session"])
        if pid is None:
            raise errors.NotFound(f"not in session {req['session']!r}")
        await self._leave(req["session"], pid, "left")
        conn.participants.pop(req["session"], None)
        return {"session": req["session"]}

    async def _leave(self, session_id: str, pid: str, reason: str) -> None:
        view = await self._run(sessions.leave_session, session_id, pid, reason)
        s, p, nobody_left = view.session, view.participant, view.nobody_left
        await self._media_send(session_id, {"type": "peer.close", "room": session_id, "peer": pid})
        if s.kind is SessionKind.TRAINING and p.role is ParticipantRole.VIEWER:
            await self._room_op(session_id, {"op": "attendance", "session_id": session_id})
        else:
            await self._room_event(
                session_id,
                P.event("participant.left", session=session_id, participant=pid, reason=reason),
            )
        self._forget_member(pid)
        if s.state is SessionState.LIVE and nobody_left:
            # the last two may leave at once, or someone ended it meanwhile: then it is over
            with contextlib.suppress(errors.InvalidTransition):
                await self._end(s, "everyone left", actor="hub")

    async def _on_session_end(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        s = await self._get(req["session"], principal)
        if s.kind is SessionKind.VISIT and principal.kind is PrincipalKind.TERMINAL:
            require(principal, Action.JOIN_SESSION, s.target(), self.store.tree)
        else:
            self._require_moderator(principal, s, Action.MODERATE_SESSION)
        if req["outcome"]:
            async with self._tx() as tx:
                await sessions.update_session(tx, s.id, outcome=req["outcome"])
                if s.item_id and self.calendar is not None:
                    # the outcome (e.g. mediation agreement reached) goes into the item's history
                    await items.apply_event(  # the link was checked when it was made
                        tx,
                        self.calendar,
                        s.item_id,
                        EventType.NOTE,
                        account_id=principal.account_id,
                        reason=f"{s.kind.value} outcome: {req['outcome']}",
                        data={"session": s.id, "kind": s.kind.value, "outcome": req["outcome"]},
                    )
        await self._end(s, f"ended by {principal.ref}", actor=principal.ref)
        return {"session": s.id, "state": "ended"}

    async def _end(self, s: sessions.SessionInfo, reason: str, actor: str) -> None:
        async with self._tx() as tx:
            ended = await sessions.set_state(tx, s.id, SessionState.ENDED, reason)
            await sessions.log_event(tx, s.id, "ended", actor=actor, data={"reason": reason})
        await self._media_send(s.id, {"type": "room.close", "room": s.id})
        await self.placement.release(s.id)
        self.room_workers.pop(s.id, None)
        lookup_code = None
        if ended.item_id:
            async with self._tx() as tx:
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
        await self._room_event(
            s.id, P.event("session.ended", session=s.id, reason=reason, receipt=receipt)
        )
        await self._room_op(s.id, {"op": "ended", "session_id": s.id})

    async def _on_link_item(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        s = await self._get(req["session"], principal)
        self._require_moderator(principal, s, Action.MODERATE_SESSION)
        async with self._tx() as tx:
            item = await items.get_item(tx, req["item_id"])  # NotFound for a made-up id
            require(principal, Action.EDIT_ITEM, item.target(), self.store.tree)
            await sessions.update_session(tx, s.id, item_id=req["item_id"])
            await sessions.log_event(
                tx, s.id, "item_linked", actor=principal.ref, data={"item": req["item_id"]}
            )
        await self._room_event(
            s.id, P.event("session.item", session=s.id, item_id=req["item_id"]), "staff"
        )
        return {"session": s.id, "item_id": req["item_id"]}

    def _require_moderator(
        self, principal: Principal, s: sessions.SessionInfo, action: Action
    ) -> None:
        """The policy decides on scope and account roles; the session role narrows it.

        An official who is present in the session as a viewer, speaker or plain member does
        not moderate it, whatever its account roles (a reception officer watching a training
        must not promote people); leaders keep moderating conferences they sit in.
        """
        require(principal, action, s.target(), self.store.tree)
        present = [
            p for p in s.participants if p.principal_ref == principal.ref and p.left_at is None
        ]
        if not present or any(p.role in STAFF_ROLES for p in present):
            return
        if s.kind is not SessionKind.TRAINING and principal.has(Role.LEADER):
            return
        raise errors.AccessDenied(
            f"{principal.ref} is a {present[-1].role.value} in session {s.id};"
            f" {action.value} needs the convener, mediator, trainer or officer"
        )

    async def _moderated(
        self, conn: Connection, req: P.Request
    ) -> tuple[Principal, sessions.SessionInfo, sessions.ParticipantInfo]:
        principal = _need(conn)
        s = await self._get(req["session"], principal)
        self._require_moderator(principal, s, Action.MODERATE_SESSION)
        if req["session"] not in conn.participants and principal.kind is not PrincipalKind.ACCOUNT:
            raise errors.AccessDenied("join the session first")
        try:
            async with self._tx() as tx:
                target = await sessions.get_participant(tx, req["participant"])
        except errors.NotFound:
            target = None
        if target is None or target.session_id != s.id:
            raise errors.NotFound(f"participant {req['participant']!r} not in session {s.id}")
        return principal, s, target

    async def _on_admit(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal, s, target = await self._moderated(conn, req)
        if target.admission is not AdmissionState.LOBBY or target.left_at is not None:
            raise errors.InvalidTransition(
                f"participant {target.id} is {target.admission.value}, not in the lobby"
            )
        async with self._tx() as tx:
            await sessions.set_participant(tx, target.id, admission=AdmissionState.ADMITTED)
            await sessions.participant_joined(tx, target.id)
            if s.state is SessionState.WAITING:
                # atomic waiting → live (UPDATE … WHERE state = waiting): two first joins at
                # once must not both try the transition (records names it after visits)
                await sessions.accept_visit(tx, s.id)
            await sessions.log_event(
                tx, s.id, "admitted", actor=principal.ref, participant_id=target.id
            )
            p = await sessions.get_participant(tx, target.id)
        await self._room_op(s.id, {"op": "admitted", "participant": target.id})
        await self._room_event(
            s.id,
            P.event("participant.joined", session=s.id, participant=_participant(p)),
            "admitted",
        )
        return {"participant": target.id, "admission": "admitted"}

    async def _on_refuse(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal, s, target = await self._moderated(conn, req)
        if target.admission is not AdmissionState.LOBBY:
            raise errors.InvalidTransition(
                f"participant {target.id} is {target.admission.value}, not in the lobby"
            )
        async with self._tx() as tx:
            await sessions.set_participant(tx, target.id, admission=AdmissionState.REFUSED)
            await sessions.participant_left(tx, target.id, "refused")
            await sessions.log_event(
                tx, s.id, "refused", actor=principal.ref, participant_id=target.id
            )
        await self._room_event(
            s.id, P.event("admission", session=s.id, state="refused"), f"participant:{target.id}"
        )
        await self._room_event(
            s.id, P.event("lobby.left", session=s.id, participant=target.id), "staff"
        )
        await self._room_op(s.id, {"op": "kick", "participant": target.id, "reason": "refused"})
        return {"participant": target.id, "admission": "refused"}

    async def _on_remove(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal, s, target = await self._moderated(conn, req)
        async with self._tx() as tx:
            await sessions.set_participant(
                tx, target.id, admission=AdmissionState.REMOVED, publishing=False
            )
            await sessions.participant_left(tx, target.id, "removed")
            await sessions.log_event(
                tx, s.id, "removed", actor=principal.ref, participant_id=target.id
            )
        await self._media_send(s.id, {"type": "peer.close", "room": s.id, "peer": target.id})
        await self._room_op(s.id, {"op": "kick", "participant": target.id, "reason": "removed"})
        await self._room_event(
            s.id, P.event("participant.left", session=s.id, participant=target.id, reason="removed")
        )
        return {"participant": target.id, "removed": True}

    async def _on_mute(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal, s, target = await self._moderated(conn, req)
        await self._media_send(
            s.id,
            {
                "type": "peer.mute",
                "room": s.id,
                "peer": target.id,
                "kind": req["kind"],
                "muted": req["muted"],
            },
        )
        async with self._tx() as tx:
            await sessions.log_event(
                tx,
                s.id,
                "muted" if req["muted"] else "unmuted",
                actor=principal.ref,
                participant_id=target.id,
                data={"kind": req["kind"]},
            )
        await self._room_event(
            s.id,
            P.event(
                "participant.muted",
                session=s.id,
                participant=target.id,
                kind=req["kind"],
                muted=req["muted"],
            ),
        )
        return {"participant": target.id, "kind": req["kind"], "muted": req["muted"]}

    async def _on_hand(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        member = self._member(conn, req["session"])
        if member.kind is not SessionKind.TRAINING:
            raise errors.InvalidTransition("hands are raised in training sessions")
        async with self._tx() as tx:
            await sessions.log_event(
                tx,
                member.session_id,
                "hand_raised" if req["raised"] else "hand_lowered",
                actor=member.principal.ref,
                participant_id=member.participant_id,
            )
        await self._room_event(
            member.session_id,
            P.event(
                "hand.raised",
                session=member.session_id,
                participant=member.participant_id,
                name=member.principal.name,
                unit_id=member.principal.unit_id,
                raised=req["raised"],
            ),
            "staff",
        )
        return {"raised": req["raised"]}

    async def _on_promote(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        return await self._set_speaker(conn, req, ParticipantRole.SPEAKER)

    async def _on_demote(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        return await self._set_speaker(conn, req, ParticipantRole.VIEWER)

    async def _set_speaker(
        self, conn: Connection, req: P.Request, role: ParticipantRole
    ) -> dict[str, Any]:
        principal, s, target = await self._moderated(conn, req)
        if s.kind is not SessionKind.TRAINING:
            raise errors.InvalidTransition("speakers are promoted in training sessions")
        if target.role not in (ParticipantRole.VIEWER, ParticipantRole.SPEAKER):
            raise errors.InvalidTransition(f"participant {target.id} is a {target.role.value}")
        async with self._tx() as tx:
            p = await sessions.set_participant(
                tx,
                target.id,
                role=role,
                publishing=False if role is ParticipantRole.VIEWER else None,
            )
            await sessions.log_event(
                tx,
                s.id,
                "promoted" if role is ParticipantRole.SPEAKER else "demoted",
                actor=principal.ref,
                participant_id=target.id,
            )
        await self._room_op(s.id, {"op": "role", "participant": target.id, "role": role.value})
        await self._room_event(
            s.id, P.event("participant.updated", session=s.id, participant=_participant(p))
        )
        if role is ParticipantRole.VIEWER:
            # viewers stop receiving the demoted speaker's media
            await self._room_op(
                s.id, {"op": "unpublished", "session": s.id, "participant": target.id}
            )
        return {"participant": target.id, "role": role.value}

    async def _on_chat(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        member = self._member(conn, req["session"])
        if not member.admitted:
            raise errors.AccessDenied("wait to be admitted")
        text = req["text"].strip()
        if not text:
            raise errors.ValidationError("chat.send: text must not be empty")
        async with self._tx() as tx:
            await sessions.log_event(
                tx,
                member.session_id,
                "chat",
                actor=member.principal.ref,
                participant_id=member.participant_id,
                data={"text": text},
            )
        audience = (
            "speakers"
            if member.kind is SessionKind.TRAINING and member.role is ParticipantRole.VIEWER
            else "admitted"
        )
        event = P.event(
            "chat.message",
            session=member.session_id,
            participant=member.participant_id,
            name=member.principal.name,
            text=text,
            at=time.time(),
        )
        await self._room_event(member.session_id, event, audience)
        if audience == "speakers" and member.conn is not None:
            member.conn.send(event)
        return {}

    async def _on_recording_set(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        principal = _need(conn)
        s = await self._get(req["session"], principal)
        self._require_moderator(principal, s, Action.RECORDING_CONTROL)
        if s.kind.value in self.settings.recording_automatic and not req["active"]:
            raise errors.ValidationError(f"{s.kind.value} sessions are always recorded")
        async with self._tx() as tx:
            await sessions.update_session(tx, s.id, recorded=req["active"])
            await sessions.log_event(
                tx, s.id, "recording_on" if req["active"] else "recording_off", actor=principal.ref
            )
        await self._media_send(s.id, {"type": "room.record", "room": s.id, "record": req["active"]})
        await self._room_event(s.id, P.event("recording", session=s.id, active=req["active"]))
        return {"recording": req["active"]}

    def _member(self, conn: Connection, session_id: str) -> Member:
        pid = conn.participants.get(session_id)
        member = self.members.get(pid) if pid else None
        if member is None:
            raise errors.NotFound(f"not in session {session_id!r}; join it first")
        return member

    # ---- attendance (training) ------------------------------------------------------------------

    async def _attendance_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for room in list(self.rooms.values()):
                if not room.attendance_dirty:
                    continue
                room.attendance_dirty = False
                staff = [
                    m
                    for pid in room.members
                    if (m := self.members.get(pid)) and m.role in STAFF_ROLES
                ]
                if not staff:
                    continue
                try:
                    async with self._tx() as tx:
                        counts = await sessions.attendance_counts(
                            tx,
                            room.session_id,
                            (ParticipantRole.VIEWER, ParticipantRole.SPEAKER),
                        )
                except errors.GatewayError as exc:
                    logger.warning("attendance of %s: %s", room.session_id, exc)
                    continue
                per_unit = {str(unit or 0): n for unit, n in counts.items()}
                event = P.event(
                    "attendance",
                    session=room.session_id,
                    total=sum(per_unit.values()),
                    units=per_unit,
                )
                for m in staff:
                    if m.conn is not None:
                        m.conn.send(event)

    # ---- media relay ------------------------------------------------------------------------

    async def _media_send(self, session_id: str, message: dict[str, Any]) -> None:
        worker = await self.placement.current(session_id)
        if worker is not None:
            await self.bus.publish(f"media.worker.{worker}", message)

    async def _on_media_offer(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        member = self._member(conn, req["session"])
        if not member.admitted:
            raise errors.AccessDenied("wait to be admitted before sending media")
        s = await self._get(member.session_id, member.principal)
        if P.sdp_sends_media(req["sdp"]):
            if not may_publish(member.role):
                raise errors.AccessDenied(
                    f"a {member.role.value} watches session {s.id}; only the trainer or a"
                    " promoted speaker publishes"
                )
            if member.role is not ParticipantRole.SPEAKER:
                # a speaker's right to publish comes from the promotion (a moderator's act)
                require(member.principal, Action.PUBLISH_MEDIA, s.target(), self.store.tree)
        if s.state is not SessionState.LIVE:
            raise errors.InvalidTransition(
                f"session {s.id} is {s.state.value}; media needs a live session"
            )
        worker, placed = await self.placement.place(s.id)
        if worker is None:
            raise P.ProtocolError(P.MEDIA_UNAVAILABLE, "no media worker is available", req.id)
        self.room_workers[s.id] = worker
        if req["restart"]:
            # a new RTCPeerConnection (the old one failed or its worker died): it subscribes
            # to the publishers once connected, whatever this hub knew of the old one
            member.media_connected = False
            if not placed:
                # the worker's peer belongs to the old connection and cannot renegotiate with
                # the new one (aiortc has no ICE restart): close it on the channel the offer
                # takes, so the worker closes it first
                await self.bus.publish(
                    f"media.worker.{worker}",
                    {"type": "peer.close", "room": s.id, "peer": member.participant_id},
                )
        if placed:
            await self.bus.publish(
                f"media.worker.{worker}",
                {
                    "type": "room.open",
                    "room": s.id,
                    "codec": self.settings.codec,
                    "record": s.recorded,
                    "meta": {
                        "kind": s.kind.value,
                        "unit_id": s.unit_id,
                        "reply_to": f"hub.{self.hub_id}",
                    },
                },
            )
        await self.bus.publish(
            f"media.worker.{worker}",
            {
                "type": "peer.offer",
                "room": s.id,
                "peer": member.participant_id,
                "sdp": req["sdp"],
                "reply_to": f"hub.{self.hub_id}",
                "may_publish": may_publish(member.role),
                "info": {
                    "name": member.principal.name,
                    "role": member.role.value,
                    "unit_id": member.principal.unit_id,
                },
            },
        )
        return {"worker": worker}

    async def _on_media_answer(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        member = self._member(conn, req["session"])
        await self._media_send(
            member.session_id,
            {
                "type": "peer.answer",
                "room": member.session_id,
                "peer": member.participant_id,
                "sdp": req["sdp"],
            },
        )
        return {}

    async def _on_media_candidate(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        member = self._member(conn, req["session"])
        await self._media_send(
            member.session_id,
            {
                "type": "peer.candidate",
                "room": member.session_id,
                "peer": member.participant_id,
                "candidate": req["candidate"],
            },
        )
        return {}

    async def _on_worker_message(self, msg: Message) -> None:
        mtype = msg.get("type")
        pid = str(msg.get("peer", ""))
        member = self.members.get(pid)
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
            async with self._tx() as tx:
                await sessions.set_participant(tx, pid, publishing=True)
            await self._room_op(
                member.session_id,
                {
                    "op": "published",
                    "session_id": member.session_id,
                    "participant": pid,
                    "role": member.role.value,
                },
            )
            await self._participant_event(member, "media.published", kinds=msg.get("kinds", []))
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
            await self._participant_event(member, "media.stats", "staff", stats=member.stats)
        elif mtype == "peer.speaking":
            # a training's viewers are not told (thousands of them; they watch the trainer)
            audience = "speakers" if member.kind is SessionKind.TRAINING else "admitted"
            speaking = msg.get("speaking") is True
            await self._participant_event(member, "media.speaking", audience, speaking=speaking)
        elif mtype == "peer.error" and conn:
            conn.send(
                P.error(None, P.MEDIA_UNAVAILABLE, str(msg.get("message", "media error"))[:300])
            )
        elif mtype == "room.lost":
            self._media_lost(member.session_id, "room lost on its media worker")

    async def _subscribe_to_publishers(self, member: Member) -> None:
        async with self._tx() as tx:
            s = await sessions.get_session_for(tx, member.session_id, member.principal.ref)
            hidden = [ParticipantRole.VIEWER] if s.kind is SessionKind.TRAINING else []
            present = await sessions.session_participants(
                tx, member.session_id, present_only=True, exclude_roles=hidden
            )
        for p in present:
            if p.id == member.participant_id or not p.publishing:
                continue
            if should_subscribe(s.kind, member.role, p.role):
                await self._media_send(
                    s.id,
                    {
                        "type": "peer.subscribe",
                        "room": s.id,
                        "peer": member.participant_id,
                        "publisher": p.id,
                    },
                )

    async def _subscribe_members_to(
        self, session_id: str, publisher: str, publisher_role: Any
    ) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            return
        try:
            prole = ParticipantRole(str(publisher_role))
        except ValueError:
            return
        for pid in list(room.members):
            member = self.members.get(pid)
            if member is None or pid == publisher or not member.media_connected:
                continue
            if should_subscribe(room.kind, member.role, prole):
                await self._media_send(
                    session_id,
                    {
                        "type": "peer.subscribe",
                        "room": session_id,
                        "peer": pid,
                        "publisher": publisher,
                    },
                )

    # ---- liveness of hubs and workers ----------------------------------------------------------

    async def _reaper_loop(self) -> None:
        # workers are checked 4 times a second (a dead worker is noticed ≤ 5 s after its last
        # heartbeat); dead hubs' participants every 2 s (they wait out the resume window anyway)
        tick = 0
        while True:
            await asyncio.sleep(0.25)
            tick += 1
            try:
                live = await self.bus.live_workers()
                await self._reap_workers(live)
                if tick % 8 == 0:
                    await self._reap(live)
            except errors.GatewayError as exc:
                logger.warning("reaper: %s", exc)

    async def _reap_workers(self, live: dict[str, Message]) -> None:
        """Tell this hub's members of rooms whose media worker died.

        Every hub checks its own rooms against the worker it last saw serving them, so each
        tells its own members even when another hub noticed first, released the placement and
        its members already re-offered onto a new worker. Releasing is compare-and-delete on
        the dead worker's id: idempotent, and never a placement a live worker holds.
        """
        live = await self._drop_deaf_workers(live)
        for session_id in list(self.rooms):
            holder = await self.placement.current(session_id, live=live, check=False)
            last = self.room_workers.get(session_id)
            if last is not None and last not in live:
                del self.room_workers[session_id]
                await self.placement.release(session_id, last)
                self._media_lost(session_id, "media worker lost")
            elif holder is not None and holder in live:
                self.room_workers[session_id] = holder
            elif holder is not None:
                # placed on a worker this hub never saw serving it (it died first)
                await self.placement.release(session_id, holder)
                self._media_lost(session_id, "media worker lost")
        for session_id in list(self.room_workers):
            if session_id not in self.rooms:
                del self.room_workers[session_id]

    async def _drop_deaf_workers(self, live: dict[str, Message]) -> dict[str, Message]:
        """Remove from the registry the workers serving this hub's rooms that stopped listening.

        A killed worker process keeps its registry entry until the ttl expires (4 s) but its
        bus channel loses its subscriber at once. Removing the entry makes every hub see the
        worker dead on its next check (each then tells its own members) and keeps placement
        off it; a worker that is alive after all registers again with its next heartbeat.
        """
        serving = {w for w in self.room_workers.values() if w in live}
        if not serving:
            self._deaf_workers.clear()
            return live
        channels = {f"media.worker.{w}": w for w in serving}
        counts = await self.bus.listeners(list(channels))
        now = time.monotonic()
        live = dict(live)
        for channel, worker in channels.items():
            if counts.get(channel, 0) > 0:
                self._deaf_workers.pop(worker, None)
                continue
            since = self._deaf_workers.setdefault(worker, now)
            if now - since >= WORKER_DEAF_S:
                logger.warning(
                    "worker %s has not listened on the bus for %.1f s: dropped", worker, now - since
                )
                await self.bus.forget_worker(worker)
                live.pop(worker, None)
                del self._deaf_workers[worker]
        for worker in list(self._deaf_workers):
            if worker not in serving:
                del self._deaf_workers[worker]
        return live

    def _media_lost(self, session_id: str, reason: str) -> None:
        """This hub's members of ``session_id`` lost their media: they offer again."""
        logger.warning("room %s: %s; telling this hub's members", session_id, reason)
        for m in list(self.members.values()):
            if m.session_id == session_id:
                m.media_connected = False
                if m.conn:
                    m.conn.send(P.event("media.lost", session=session_id, reason=reason))

    async def _reap(self, live: dict[str, Message]) -> None:
        """Participants of hubs that died are marked left after the resume window."""
        now = time.monotonic()
        hubs = {w for w, info in live.items() if info.get("kind") == "hub"}
        async with self._tx() as tx:
            orphans = await sessions.orphaned_participants(tx, hubs | {self.hub_id})
        for p in orphans:
            first = self._dead_hubs.setdefault(p.hub_id, now)
            if now - first < self.settings.resume_window_s:
                continue
            # every live hub runs this reaper: one of them takes each orphan, so the leave is
            # logged and announced once (the lock expires by itself; nobody releases it)
            if not await self.bus.acquire(f"reap:{p.id}", self.hub_id, 60.0):
                continue
            async with self._tx() as tx:
                await sessions.participant_left(tx, p.id, "hub_lost")
                await sessions.set_participant(tx, p.id, publishing=False)
                await sessions.log_event(
                    tx, p.session_id, "left", participant_id=p.id, data={"reason": "hub_lost"}
                )
            await self._media_send(
                p.session_id, {"type": "peer.close", "room": p.session_id, "peer": p.id}
            )
            await self._room_event(
                p.session_id,
                P.event(
                    "participant.left", session=p.session_id, participant=p.id, reason="hub_lost"
                ),
            )

    # ---- pushes from the HTTP edge ------------------------------------------------------------

    async def announce(self, announcement: sessions.AnnouncementInfo) -> None:
        """Push an announcement to every terminal in its unit's subtree, on every hub."""
        await self.bus.publish("announce", announcement.as_json())

    async def _on_announce(self, msg: Message) -> None:
        unit_id = int(msg["unit_id"])
        for conn in self.conns.values():
            p = conn.principal
            if (
                p is not None
                and p.kind is PrincipalKind.TERMINAL
                and p.unit_id is not None
                and self.store.tree.within(p.unit_id, unit_id)
            ):
                conn.send(P.event("announcement", announcement=msg))

    async def invite_revoked(self, session_id: str, invite_id: str) -> None:
        """Remove whoever joined with a revoked invite."""
        async with self._tx() as tx:
            s = await sessions.get_session(tx, session_id)
        for p in s.participants:
            if p.principal_ref == f"invite:{invite_id}" and p.left_at is None:
                async with self._tx() as tx:
                    await sessions.participant_left(tx, p.id, "invite_revoked")
                    await sessions.log_event(
                        tx, s.id, "left", participant_id=p.id, data={"reason": "invite_revoked"}
                    )
                await self._media_send(s.id, {"type": "peer.close", "room": s.id, "peer": p.id})
                await self._room_op(
                    s.id, {"op": "kick", "participant": p.id, "reason": "invite_revoked"}
                )
                await self._room_event(
                    s.id,
                    P.event(
                        "participant.left", session=s.id, participant=p.id, reason="invite_revoked"
                    ),
                )

    async def terminal_revoked(self, terminal_id: int) -> None:
        """Disconnect a revoked terminal on every hub."""
        await self.bus.publish("terminal.revoked", {"terminal_id": terminal_id})

    async def _on_terminal_revoked(self, msg: Message) -> None:
        ref = f"terminal:{int(msg['terminal_id'])}"
        for conn in list(self.conns.values()):
            if conn.principal is not None and conn.principal.ref == ref:
                conn.send(
                    P.error(None, P.UNAUTHENTICATED, "this terminal's credential was revoked")
                )
                await conn.close("revoked")

    # ---- small helpers ----------------------------------------------------------------------

    async def _on_ping(self, conn: Connection, req: P.Request) -> dict[str, Any]:
        if req.id is None:
            conn.send(P.event("pong", at=time.time()))
        return {"at": time.time()}

    async def _get(
        self, session_id: str, principal: Principal | None = None
    ) -> sessions.SessionInfo:
        """The session; with ``principal``, only that principal's participant rows.

        The policy decides the same on either (it looks for the principal's own ref), and a
        training with thousands of viewers is not loaded row by row on every request.
        """
        async with self._tx() as tx:
            if principal is not None:
                return await sessions.get_session_for(tx, session_id, principal.ref)
            return await sessions.get_session(tx, session_id)

    async def gauges(self) -> dict[str, Any]:
        """Figures for /metrics, with each connected peer's last media statistics."""
        figures: dict[str, Any] = {
            "gateway_ws_connections": len(self.conns),
            "gateway_members": len(self.members),
            "gateway_rooms": len(self.rooms),
            "gateway_ws_messages_total": self.counters.get("ws_messages", 0),
        }
        for key in ("bitrate_kbps", "fps", "packets_lost", "rtt_ms"):
            series = {
                (("session", m.session_id), ("participant", pid)): m.stats[key]
                for pid, m in self.members.items()
                if isinstance(m.stats.get(key), int | float)
            }
            if series:
                figures[f"gateway_peer_{key}"] = series
        return figures


def _need(conn: Connection) -> Principal:
    if conn.principal is None:
        raise P.ProtocolError(P.UNAUTHENTICATED, "send hello first")
    return conn.principal


async def _present_memberships(
    tx: Any, principal: Principal
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


def _hidden_roles(kind: SessionKind) -> tuple[ParticipantRole, ...]:
    """Roles a room snapshot leaves out: a training shows its viewers only to themselves.

    Never loading them keeps a join into a training of thousands from reading thousands of rows.
    """
    return (ParticipantRole.VIEWER,) if kind is SessionKind.TRAINING else ()


def _participant(p: sessions.ParticipantInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.display_name,
        "role": p.role.value,
        "unit_id": p.unit_id,
        "admission": p.admission.value,
        "joined_at": p.joined_at.isoformat() if p.joined_at else None,
        "publishing": p.publishing,
    }


def _session_brief(s: sessions.SessionInfo) -> dict[str, Any]:
    return {
        "id": s.id,
        "kind": s.kind.value,
        "state": s.state.value,
        "unit_id": s.unit_id,
        "title": s.title,
        "category": s.category,
        "recorded": s.recorded,
        "item_id": s.item_id,
        "created_at": s.created_at.isoformat(),
    }
