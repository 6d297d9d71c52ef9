"""Liveness: this hub's heartbeat, and what happens when another hub or a worker dies.

A hub registers on the bus with a short ttl; a dead hub's participants are marked left after
the resume window (by whichever live hub takes each one). A media worker that stops
listening or leaves the registry loses its rooms: every hub tells its own members, who offer
again onto a live worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from config import errors
from records import sessions
from signaling import bus_messages as B
from signaling import events as E
from signaling.bus import Message

if TYPE_CHECKING:
    from signaling.services import Services

logger = logging.getLogger(__name__)

HUB_TTL_S = 5.0
#: how often (in heartbeats, about seconds) live sessions note their activity
ACTIVITY_EVERY_BEATS = 10
#: a worker whose bus channel has had no subscriber this long is gone: a dead process loses its
#: Redis connection at once, seconds before its registry entry expires; a second covers the
#: bus's own reconnect after a connection error
WORKER_DEAF_S = 1.0


class Liveness:
    """The heartbeat and the reaper of one hub."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._dead_hubs: dict[str, float] = {}
        self._deaf_workers: dict[str, float] = {}  # worker -> first seen without a subscriber

    async def heartbeat_loop(self) -> None:
        """Keep this hub registered; note the activity of its live sessions now and then."""
        services = self.services
        beat = 0
        while True:
            try:
                await services.bus.heartbeat(
                    services.hub_id,
                    {"kind": "hub", "connections": len(services.conns)},
                    HUB_TTL_S,
                )
            except errors.BusError as exc:
                logger.warning("hub heartbeat failed: %s", exc)
            beat += 1
            rooms = services.rooms.local
            if beat % ACTIVITY_EVERY_BEATS == 0 and rooms:
                # a crash ends a live session at its last known activity: keep that recent
                try:
                    await services.run(sessions.touch_live_sessions, list(rooms))
                except errors.GatewayError as exc:
                    logger.warning("session activity not noted: %s", exc)
            await asyncio.sleep(1.0)

    async def reaper_loop(self) -> None:
        """Check workers 4 times a second and dead hubs' participants every 2 s."""
        # a dead worker is noticed ≤ 5 s after its last heartbeat; dead hubs' participants
        # wait out the resume window anyway
        tick = 0
        while True:
            await asyncio.sleep(0.25)
            tick += 1
            try:
                live = await self.services.bus.live_workers()
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
        services = self.services
        placement = services.placement
        relay = services.relay
        room_workers = relay.room_workers
        live = await self._drop_deaf_workers(live)
        for session_id in list(services.rooms.local):
            holder = await placement.current(session_id, live=live, check=False)
            last = room_workers.get(session_id)
            dead: set[str] = set()
            if last is not None and last not in live:
                del room_workers[session_id]
                await placement.release(session_id, last)
                dead.add(last)
            elif holder is not None and holder in live:
                room_workers[session_id] = holder
            elif holder is not None:
                # placed on a worker this hub never saw serving it (it died first)
                await placement.release(session_id, holder)
                dead.add(holder)
            # the room's other workers (relays) that served this hub's members
            room = services.rooms.local[session_id]
            dead |= {
                w
                for pid in room.members
                if (w := relay.peer_workers.get(pid)) is not None and w not in live
            }
            if dead:
                await placement.forget_workers(session_id, dead)
                for worker in sorted(dead):
                    relay.media_lost(session_id, "media worker lost", worker)
        for session_id in list(room_workers):
            if session_id not in services.rooms.local:
                del room_workers[session_id]

    async def _drop_deaf_workers(self, live: dict[str, Message]) -> dict[str, Message]:
        """Remove from the registry the workers serving this hub's rooms that stopped listening.

        A killed worker process keeps its registry entry until the ttl expires (4 s) but its
        bus channel loses its subscriber at once. Removing the entry makes every hub see the
        worker dead on its next check (each then tells its own members) and keeps placement
        off it; a worker that is alive after all registers again with its next heartbeat.
        """
        relay = self.services.relay
        serving = {
            w for w in (*relay.room_workers.values(), *relay.peer_workers.values()) if w in live
        }
        if not serving:
            self._deaf_workers.clear()
            return live
        channels = {f"media.worker.{w}": w for w in serving}
        counts = await self.services.bus.listeners(list(channels))
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
                await self.services.bus.forget_worker(worker)
                live.pop(worker, None)
                del self._deaf_workers[worker]
        for worker in list(self._deaf_workers):
            if worker not in serving:
                del self._deaf_workers[worker]
        return live

    async def _reap(self, live: dict[str, Message]) -> None:
        """Participants of hubs that died are marked left after the resume window."""
        services = self.services
        now = time.monotonic()
        hubs = {w for w, info in live.items() if info.get("kind") == "hub"}
        orphans = await services.run(sessions.orphans, hubs | {services.hub_id})
        for p in orphans:
            first = self._dead_hubs.setdefault(p.hub_id, now)
            if now - first < services.settings.resume_window_s:
                continue
            # every live hub runs this reaper: one of them takes each orphan, so the leave is
            # logged and announced once (the lock expires by itself; nobody releases it)
            if not await services.bus.acquire(f"reap:{p.id}", services.hub_id, 60.0):
                continue
            async with services.tx() as tx:
                await sessions.participant_left(tx, p.id, "hub_lost")
                await sessions.set_participant(tx, p.id, publishing=False)
                await sessions.log_event(
                    tx, p.session_id, "left", participant_id=p.id, data={"reason": "hub_lost"}
                )
            await services.relay.send(B.PeerClose(session_id=p.session_id, peer=p.id))
            await services.rooms.event(
                p.session_id,
                E.ParticipantLeft(session=p.session_id, participant=p.id, reason="hub_lost"),
            )
