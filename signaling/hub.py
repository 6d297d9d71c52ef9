"""The signaling hub: ``/ws`` connections, their read loop, dispatch and lifecycle.

State that must survive a reload, a hub restart or another hub lives in the database
(sessions, participants, admissions, roles) and travels as bus messages:

- ``room.<session>``: room operations every hub with members of that room applies;
- ``queue.<reception unit>``: "the queue changed" (each hub recomputes positions);
- ``hub.<hub id>``: replies from media workers for this hub's peers;
- ``announce`` and ``terminal.revoked``: pushes to terminals.

The hub keeps only per-connection state in memory. What each client message does is in
``signaling/commands/`` (one module per concern); the hub's parts (presence, rooms, the visit
queue, the media relay, liveness) are in :mod:`signaling.services`. docs/protocol.md documents
the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import WSMsgType, web

from config import errors
from config.settings import Settings
from records import accounts, sessions
from records.calendar import HolidayCalendar
from records.enums import PrincipalKind
from records.principals import Principal
from records.store import Store
from signaling import bus_messages as B
from signaling import events as E
from signaling import protocol as P
from signaling.bus import Bus, Subscription
from signaling.commands import COMMANDS, SCHEMAS
from signaling.connection import Connection
from signaling.context import Context
from signaling.liveness import HUB_TTL_S
from signaling.presence import Member
from signaling.rooms import RoomLocal
from signaling.services import Services

logger = logging.getLogger(__name__)


#: the requests whose time to their result the join-latency histogram measures
JOIN_TYPES = frozenset({"hello", "session.join"})


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
        on_join: Callable[[str, float], None] | None = None,
    ) -> None:
        self.services = Services(settings, store, bus, hub_id=hub_id, calendar=calendar)
        self.settings = settings
        self.store = store
        self.bus = bus
        self.hub_id = self.services.hub_id
        self.conns: dict[str, Connection] = self.services.conns
        self._subs: list[Subscription] = []
        self._closing = False
        self.counters: dict[str, int] = {}
        self._on_join = on_join  # (hello or session.join, seconds until the result is queued)

    @property
    def members(self) -> dict[str, Member]:
        """The participants held by connections of this hub (or waiting out their window)."""
        return self.services.presence.members

    @property
    def rooms(self) -> dict[str, RoomLocal]:
        """The rooms this hub has members in."""
        return self.services.rooms.local

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Mark sessions a crash left live as interrupted; subscribe; start the monitors."""
        async with self.services.tx() as tx:
            interrupted = await sessions.mark_interrupted(tx) if not self.settings.redis_url else []
        if interrupted:
            logger.warning("marked %d sessions interrupted after a restart", len(interrupted))
        await self.bus.heartbeat(self.hub_id, {"kind": "hub"}, HUB_TTL_S)
        consumers = (
            (
                B.hub_channel(self.hub_id),
                self.services.consume(
                    await self._subscribe(B.hub_channel(self.hub_id)),
                    B.WORKER_REPLIES.validate_python,
                    self.services.relay.on_worker_message,
                ),
            ),
            (
                B.ANNOUNCE,
                self.services.consume(
                    await self._subscribe(B.ANNOUNCE),
                    B.Announcement.model_validate,
                    self._on_announce,
                ),
            ),
            (
                B.TERMINAL_REVOKED,
                self.services.consume(
                    await self._subscribe(B.TERMINAL_REVOKED),
                    B.TerminalRevoked.model_validate,
                    self._on_terminal_revoked,
                ),
            ),
        )
        for channel, consumer in consumers:
            self.services.spawn(consumer, f"hub-consume-{channel}")
        self.services.spawn(self.services.liveness.heartbeat_loop(), "hub-heartbeat")
        self.services.spawn(self.services.liveness.reaper_loop(), "hub-reaper")
        self.services.spawn(self.services.rooms.attendance_loop(), "hub-attendance")

    async def _subscribe(self, channel: str) -> Subscription:
        sub = await self.bus.subscribe(channel)
        self._subs.append(sub)
        return sub

    async def close(self) -> None:
        """Stop accepting, tell clients, close connections, cancel tasks; idempotent."""
        if self._closing:
            return
        self._closing = True
        for conn in list(self.conns.values()):
            conn.send(E.ServerClosing(reason="hub shutting down"))
            await conn.close("hub shutting down")
        self.services.presence.cancel_timers()
        await self.services.rooms.close()
        await self.services.queue.close()
        for sub in self._subs:
            await sub.close()
        for task in list(self.services.tasks):
            task.cancel()
        await asyncio.gather(*self.services.tasks, return_exceptions=True)
        with contextlib.suppress(errors.GatewayError):
            await self.bus.forget_worker(self.hub_id)

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
            on_error=lambda code: self._count(f"ws_error_{code}"),
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
                await self.services.presence.detach(conn)
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
                req = P.parse(raw, self.settings.max_message_bytes, SCHEMAS)
            except P.ProtocolError as exc:
                conn.send(P.error(exc.request_id, exc.code, str(exc)))
                continue
            self._count(f"ws_message.{req.type}")
            await self._dispatch(conn, req, cookie_principal)

    async def _dispatch(
        self, conn: Connection, req: P.Request, cookie_principal: Principal | None
    ) -> None:
        reply: Mapping[str, object] | None
        started = time.perf_counter()
        try:
            if conn.principal is None:
                if req.type == "hello":
                    reply = await self._handle(conn, req, cookie_principal)
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
                    await self.services.presence.check_invite(conn)
                reply = await self._handle(conn, req)
            if req.id is not None:
                conn.send(P.result(req.id, reply or {}))
            if self._on_join is not None and req.type in JOIN_TYPES:
                self._on_join(req.type, time.perf_counter() - started)
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

    async def _handle(
        self, conn: Connection, req: P.Request, cookie: Principal | None = None
    ) -> Mapping[str, object] | None:
        """Run the command's handler with its context (never the hub itself)."""
        ctx = Context(conn, req.id, self.services, cookie)
        return await COMMANDS[req.type].handler(ctx, req.message)

    async def _audit_denied(self, conn: Connection, req: P.Request, reason: str) -> None:
        actor = conn.principal.ref if conn.principal else "anonymous"
        try:
            async with self.services.tx() as tx:
                await accounts.audit(
                    tx,
                    actor,
                    req.type,
                    "session",
                    str(getattr(req.message, "session", None) or ""),
                    remote=conn.remote,
                    outcome="denied",
                    detail={"reason": reason[:300]},
                )
        except errors.GatewayError:
            logger.exception("audit of a refusal failed")

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    # ---- pushes from the HTTP edge ------------------------------------------------------------

    async def announce(self, announcement: sessions.AnnouncementInfo) -> None:
        """Push an announcement to every terminal in its unit's subtree, on every hub."""
        await self.bus.publish(B.ANNOUNCE, B.Announcement.model_validate(announcement.as_json()))

    async def _on_announce(self, msg: B.Announcement) -> None:
        unit_id = msg.unit_id
        for conn in self.conns.values():
            p = conn.principal
            if (
                p is not None
                and p.kind is PrincipalKind.TERMINAL
                and p.unit_id is not None
                and self.store.tree.within(p.unit_id, unit_id)
            ):
                conn.send(E.AnnouncementPushed(announcement=msg.model_dump(exclude={"type"})))

    async def invite_revoked(self, session_id: str, invite_id: str) -> None:
        """Remove whoever joined with a revoked invite."""
        await self.services.rooms.remove_invitee(session_id, invite_id)

    async def terminal_revoked(self, terminal_id: int) -> None:
        """Disconnect a revoked terminal on every hub."""
        await self.bus.publish(B.TERMINAL_REVOKED, B.TerminalRevoked(terminal_id=terminal_id))

    async def _on_terminal_revoked(self, msg: B.TerminalRevoked) -> None:
        ref = f"terminal:{msg.terminal_id}"
        for conn in list(self.conns.values()):
            if conn.principal is not None and conn.principal.ref == ref:
                conn.send(
                    P.error(None, P.UNAUTHENTICATED, "this terminal's credential was revoked")
                )
                await conn.close("revoked")

    # ---- metrics ------------------------------------------------------------------------------

    def gauges(self) -> dict[str, Any]:
        """Figures for /metrics, with each connected peer's last media statistics."""
        figures: dict[str, Any] = {
            "gateway_ws_connections": len(self.conns),
            "gateway_members": len(self.members),
            "gateway_rooms": len(self.rooms),
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
